// Streaming image writer: from the guest disk's allocation map, the exact layout of a qcow2 (or raw)
// image, then its bytes in one forward pass from any offset. Pure format code: no I/O of its own,
// guest data comes through the caller's reader.

import { AllocationMap } from './allocation-map';
import { Qcow2LayoutError } from './errors';
import { ImagePlan } from './emit';
import { planQcow2, Qcow2Options } from './qcow2-layout';
import { planRaw } from './raw-layout';

export { MAX_VIRTUAL_SIZE, MiB, SECTOR_SIZE, validateAllocationMap } from './allocation-map';
export type { AllocationMap, Extent, ExtentKind } from './allocation-map';
export { Qcow2LayoutError, Qcow2SourceError } from './errors';
export type { Qcow2LayoutErrorCode } from './errors';
export { DEFAULT_CHUNK_BYTES, DEFAULT_MAX_READS_IN_FLIGHT, emit, emitFrom } from './emit';
export type { EmitOptions, ImagePlan, ReadGuest } from './emit';
export { DEFAULT_CLUSTER_SIZE, DEFAULT_REFCOUNT_BITS, planQcow2, qcow2DataPlacements, qcow2HostOffset } from './qcow2-layout';
export type { DataPlacement, Qcow2Options, Qcow2Plan, Qcow2Region } from './qcow2-layout';
export { renderQcow2Metadata } from './qcow2-metadata';
export { planRaw } from './raw-layout';
export type { RawPlan } from './raw-layout';
export type { RunList } from './runs';

export type ImageFormat = 'qcow2' | 'raw';

export interface ImageOptions extends Qcow2Options {
  readonly format: ImageFormat;
}

/** The plan for snapshot_image_format's value; qcow2 options are ignored for raw. */
export function planImage(map: AllocationMap, options: ImageOptions): ImagePlan {
  if (options.format === 'qcow2') return planQcow2(map, options);
  if (options.format === 'raw') return planRaw(map);
  throw new Qcow2LayoutError('bad-option', `image format must be qcow2 or raw, got ${String(options.format)}`);
}
export { LOGICAL_DIGEST_ALGORITHM, LOGICAL_DIGEST_BLOCK, LogicalDigest, logicalDigestOf, zeroBlockHash } from './logical-digest';
