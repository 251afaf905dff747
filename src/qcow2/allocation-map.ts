// The guest-visible disk as the NBD client sees it through block status: a virtual size and extents
// that tile [0, virtualSize) exactly. Checked by hand rather than with zod: a fragmented multi-TiB
// disk can have millions of extents, and a schema pass per extent would cost more than the plan.

import { Qcow2LayoutError } from './errors';

export type ExtentKind = 'data' | 'zero' | 'hole';

export interface Extent {
  readonly offset: number;
  readonly length: number;
  /** 'zero' reads as zeros; 'hole' is unallocated and reads as zeros too; only 'data' is read */
  readonly kind: ExtentKind;
}

export interface AllocationMap {
  readonly virtualSize: number;
  readonly extents: readonly Extent[];
}

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
export const TiB = 1024 * GiB;

/** Our cap: far above any Nova flavour, and well inside exact Number arithmetic for every offset. */
export const MAX_VIRTUAL_SIZE = 64 * TiB;

/** QEMU's block layer rounds every disk to 512-byte sectors, so an NBD export is always a multiple. */
export const SECTOR_SIZE = 512;

const KINDS: ReadonlySet<string> = new Set<ExtentKind>(['data', 'zero', 'hole']);

function describe(extent: Extent, index: number): string {
  return `extent ${index} {offset ${extent.offset}, length ${extent.length}, ${extent.kind}}`;
}

/** Throws Qcow2LayoutError unless the extents are sorted, positive, and tile the disk exactly. */
export function validateAllocationMap(map: AllocationMap): void {
  const { virtualSize, extents } = map;
  if (!Number.isSafeInteger(virtualSize) || virtualSize < 0) {
    throw new Qcow2LayoutError('bad-map', `virtual size must be a non-negative integer, got ${virtualSize}`);
  }
  if (virtualSize > MAX_VIRTUAL_SIZE) {
    throw new Qcow2LayoutError('too-large', `virtual size ${virtualSize} exceeds the cap of ${MAX_VIRTUAL_SIZE} bytes (64 TiB)`);
  }
  if (virtualSize % SECTOR_SIZE !== 0) {
    throw new Qcow2LayoutError('bad-map', `virtual size ${virtualSize} is not a multiple of ${SECTOR_SIZE}`);
  }
  let end = 0;
  extents.forEach((extent, i) => {
    if (!KINDS.has(extent.kind)) throw new Qcow2LayoutError('bad-map', `${describe(extent, i)}: unknown kind`);
    if (!Number.isSafeInteger(extent.offset) || extent.offset < 0) {
      throw new Qcow2LayoutError('bad-map', `${describe(extent, i)}: offset must be a non-negative integer`);
    }
    if (!Number.isSafeInteger(extent.length) || extent.length <= 0) {
      throw new Qcow2LayoutError('bad-map', `${describe(extent, i)}: length must be a positive integer`);
    }
    if (extent.offset < end) {
      const previous = extents[i - 1];
      const unsorted = previous !== undefined && extent.offset < previous.offset;
      throw new Qcow2LayoutError('bad-map', `${describe(extent, i)} ${unsorted ? 'is out of order' : 'overlaps the previous extent'} (previous ends at ${end})`);
    }
    if (extent.offset > end) {
      throw new Qcow2LayoutError('bad-map', `${describe(extent, i)} leaves a gap [${end}, ${extent.offset}) no extent covers`);
    }
    end = extent.offset + extent.length;
    if (end > virtualSize) {
      throw new Qcow2LayoutError('bad-map', `${describe(extent, i)} ends at ${end}, beyond the virtual size ${virtualSize}`);
    }
  });
  if (end !== virtualSize) {
    throw new Qcow2LayoutError('bad-map', `extents end at ${end} but the virtual size is ${virtualSize}: [${end}, ${virtualSize}) is not covered`);
  }
}
