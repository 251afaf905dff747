// The output from a given offset as a lazy sequence of pieces, each either bytes computed from the
// plan alone or a guest read. Nothing here awaits: the emitter decides how many reads run at once.

import { Qcow2Plan } from './qcow2-layout';
import { renderQcow2Metadata } from './qcow2-metadata';
import { RawPlan } from './raw-layout';
import { at, firstRunEndingAfter, runAtOrdinal } from './runs';

export type Piece =
  | { readonly kind: 'computed'; readonly render: () => Buffer }
  | {
      readonly kind: 'read';
      readonly guestOffset: number;
      readonly length: number;
      /** the output span is the read padded with zeros to this length ... */
      readonly paddedLength: number;
      /** ... then cut to [skip, paddedLength): a restart may begin inside the first cluster */
      readonly skip: number;
    };

/**
 * qcow2: metadata, then data clusters in guest order, a read never crossing a run. Pieces are whole
 * clusters (chunkBytes rounded down, at least one) on chunk boundaries, so a restart inside a
 * cluster renders that cluster once rather than once per tiny piece.
 */
export function* qcow2Pieces(plan: Qcow2Plan, from: number, chunkBytes: number): Generator<Piece> {
  const cs = plan.clusterSize;
  const chunkClusters = Math.max(1, Math.floor(chunkBytes / cs));
  const chunk = chunkClusters * cs;
  const metadataEnd = plan.data.offset;
  for (let x = from; x < metadataEnd; ) {
    const start = x;
    const end = Math.min(metadataEnd, (Math.floor(start / chunk) + 1) * chunk);
    yield { kind: 'computed', render: () => renderQcow2Metadata(plan, start, end - start) };
    x = end;
  }
  if (plan.dataClusters.total === 0 || from >= plan.size) return;
  const firstByte = Math.max(from, metadataEnd) - metadataEnd;
  let ordinal = Math.floor(firstByte / cs);
  let skip = firstByte % cs;
  const runs = plan.dataClusters;
  for (let r = runAtOrdinal(runs, ordinal); r < runs.count; r++) {
    const runStart = at(runs.starts, r);
    const runEnd = at(runs.ends, r);
    for (let g = runStart + (ordinal - at(runs.before, r)); g < runEnd; ) {
      const clusters = Math.min(chunkClusters, runEnd - g);
      const guestOffset = g * cs;
      // The disk's last cluster may stick out past the virtual size; the source has nothing there.
      const length = Math.min(clusters * cs, plan.virtualSize - guestOffset);
      yield { kind: 'read', guestOffset, length, paddedLength: clusters * cs, skip };
      skip = 0;
      g += clusters;
      ordinal += clusters;
    }
  }
}

/** raw: data ranges read as they are, everything between them zeros. */
export function* rawPieces(plan: RawPlan, from: number, chunkBytes: number): Generator<Piece> {
  const ranges = plan.dataRanges;
  let x = from;
  for (let r = firstRunEndingAfter(ranges, x); x < plan.size; r++) {
    const dataStart = r < ranges.count ? at(ranges.starts, r) : plan.size;
    const dataEnd = r < ranges.count ? at(ranges.ends, r) : plan.size;
    for (; x < dataStart; ) {
      const length = Math.min(chunkBytes, dataStart - x);
      yield { kind: 'computed', render: () => Buffer.alloc(length) };
      x += length;
    }
    for (; x < dataEnd; ) {
      const length = Math.min(chunkBytes, dataEnd - x);
      yield { kind: 'read', guestOffset: x, length, paddedLength: length, skip: 0 };
      x += length;
    }
  }
}
