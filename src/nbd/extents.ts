// Whole-export maps from block status: the allocation map the qcow2 writer lays its image out from,
// and the dirty ranges of a QEMU bitmap for incremental copies. The export is cut into windows
// walked concurrently (a terabyte disk is thousands of round trips otherwise); inside a window each
// reply says where the next request starts, because a server may answer less than it was asked.
import { NbdProtocolError, NbdUsageError } from './errors';
import type { NbdClient } from './client';
import { BASE_ALLOCATION, NBD_STATE_DIRTY, NBD_STATE_HOLE, NBD_STATE_ZERO } from './protocol';
import type { Extent } from './replies';

/**
 * data: must be read; zero: allocated but reads as zeros; hole: unallocated and reads as zeros.
 * A hole whose contents the server does not vouch for (HOLE without ZERO) counts as data.
 */
export type AllocationKind = 'data' | 'zero' | 'hole';

export interface AllocationExtent {
  offset: number;
  length: number;
  kind: AllocationKind;
}

export interface Range {
  offset: number;
  length: number;
}

export interface WalkOptions {
  /** start of the walked range (default 0) */
  offset?: number;
  /** bytes to walk (default: to the end of the export) */
  length?: number;
  /** bytes per independently walked window */
  windowBytes?: number;
  /** windows walked at once */
  concurrency?: number;
}

const DEFAULT_WINDOW = 1024 * 1024 * 1024;
const DEFAULT_CONCURRENCY = 4;

/** Every extent of `context` over the range, in order, adjacent extents with equal flags merged. */
export async function walkExtents(client: NbdClient, context: string, opts: WalkOptions = {}): Promise<Extent[]> {
  const start = opts.offset ?? 0;
  const end = opts.length === undefined ? client.exportSize : start + opts.length;
  const concurrency = opts.concurrency ?? DEFAULT_CONCURRENCY;
  const window = alignWindow(opts.windowBytes ?? DEFAULT_WINDOW, client.blockSize.minimum);
  if (!client.contexts.has(context)) throw new NbdUsageError(`metadata context '${context}' was not negotiated`);
  if (!Number.isSafeInteger(start) || start < 0 || !Number.isSafeInteger(end) || end < start || end > client.exportSize) {
    throw new NbdUsageError(`cannot walk [${start}, ${end}) of a ${client.exportSize}-byte export`);
  }
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) throw new NbdUsageError(`concurrency must be a positive integer (got ${concurrency})`);

  const windows: Range[] = [];
  for (let at = start; at < end; at += window) windows.push({ offset: at, length: Math.min(window, end - at) });
  const results: Extent[][] = new Array<Extent[]>(windows.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < windows.length) {
      const i = next++;
      results[i] = await walkWindow(client, context, windows[i] as Range);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, windows.length) }, worker));
  return mergeEqual(results.flat(), (a, b) => a.flags === b.flags);
}

/** The export's allocation map from base:allocation: what the image writer must copy and what it may skip. */
export async function allocationMap(client: NbdClient, opts: WalkOptions = {}): Promise<AllocationExtent[]> {
  const extents = await walkExtents(client, BASE_ALLOCATION, opts);
  const kinds = extents.map((e) => ({ offset: e.offset, length: e.length, kind: allocationKind(e.flags) }));
  return mergeEqual(kinds, (a, b) => a.kind === b.kind);
}

/** Ranges a QEMU dirty bitmap (`qemu:dirty-bitmap:<name>`, see dirtyBitmapContext) marks dirty. */
export async function dirtyRanges(client: NbdClient, context: string, opts: WalkOptions = {}): Promise<Range[]> {
  const extents = await walkExtents(client, context, opts);
  return extents.filter((e) => (e.flags & NBD_STATE_DIRTY) !== 0).map((e) => ({ offset: e.offset, length: e.length }));
}

export function allocationKind(flags: number): AllocationKind {
  if ((flags & NBD_STATE_ZERO) === 0) return 'data';
  return (flags & NBD_STATE_HOLE) !== 0 ? 'hole' : 'zero';
}

async function walkWindow(client: NbdClient, context: string, w: Range): Promise<Extent[]> {
  const out: Extent[] = [];
  const end = w.offset + w.length;
  let at = w.offset;
  while (at < end) {
    const extents = await client.blockStatus(context, at, end - at);
    // Extents start at the asked offset and none is empty, so each round advances; the guard is
    // there so that a bug elsewhere can never turn into an endless loop.
    const last = extents[extents.length - 1];
    if (!last || last.offset + last.length <= at) throw new NbdProtocolError(`block status for '${context}' at ${at} made no progress`);
    for (const e of extents) out.push(e);
    at = last.offset + last.length;
  }
  return out;
}

function mergeEqual<T extends Range>(items: T[], same: (a: T, b: T) => boolean): T[] {
  const out: T[] = [];
  for (const item of items) {
    const prev = out[out.length - 1];
    if (prev && prev.offset + prev.length === item.offset && same(prev, item)) prev.length += item.length;
    else out.push({ ...item });
  }
  return out;
}

function alignWindow(window: number, minimum: number): number {
  if (!Number.isSafeInteger(window) || window < 1) throw new NbdUsageError(`windowBytes must be a positive integer (got ${window})`);
  return Math.max(minimum, window - (window % minimum));
}
