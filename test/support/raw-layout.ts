// The layout of a resumable upload whose staged bytes are the served image: a raw disk that is all
// data, so what is appended is what a download returns. For tests of the resumable session itself
// (offsets, tokens, restarts, locks), where the disk's shape does not matter.
import type { LogicalLayout } from '../../src/images/client';

export function allDataRawLayout(bytes: number): LogicalLayout {
  return { format: 'raw', map: { virtualSize: bytes, extents: bytes === 0 ? [] : [[0, bytes, 'd']] } };
}

/** The open body of such an upload for ImageService.resumable.open (and the HTTP route). */
export function allDataRawOpen(bytes: number, token: string): { size: number; token: string; layout: LogicalLayout } {
  return { size: bytes, token, layout: allDataRawLayout(bytes) };
}
