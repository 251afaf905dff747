// Raw output (snapshot_image_format=raw): the guest disk byte for byte. Its size is the virtual
// size; data extents are read, zero and hole extents are emitted as zeros without reading.

import { AllocationMap, validateAllocationMap } from './allocation-map';
import { RunList, RunListBuilder } from './runs';

export interface RawPlan {
  readonly format: 'raw';
  readonly virtualSize: number;
  /** exact output length in bytes: the virtual size */
  readonly size: number;
  /** byte ranges read from the guest, adjacent data extents merged */
  readonly dataRanges: RunList;
}

export function planRaw(map: AllocationMap): RawPlan {
  validateAllocationMap(map);
  const builder = new RunListBuilder();
  for (const extent of map.extents) {
    if (extent.kind === 'data') builder.add(extent.offset, extent.offset + extent.length);
  }
  return { format: 'raw', virtualSize: map.virtualSize, size: map.virtualSize, dataRanges: builder.build() };
}
