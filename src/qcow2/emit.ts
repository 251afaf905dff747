// One forward pass over the image, from any offset. The bytes at an offset depend only on the plan
// (so on the map) and the guest data, which is what lets an interrupted upload resume where the
// server's committed length says. Guest reads overlap (up to maxReadsInFlight), and memory stays
// near maxReadsInFlight × chunkBytes whatever the disk's size.

import { MiB } from './allocation-map';
import { Qcow2LayoutError, Qcow2SourceError } from './errors';
import { Piece, qcow2Pieces, rawPieces } from './pieces';
import { Qcow2Plan } from './qcow2-layout';
import { RawPlan } from './raw-layout';

export type ImagePlan = Qcow2Plan | RawPlan;

/**
 * Reads [offset, offset + length) of the guest disk, exactly that many bytes, zeros where the disk
 * has none. For qcow2 the offset is cluster-aligned and the length whole clusters, cut short only
 * at the end of the disk.
 */
export type ReadGuest = (offset: number, length: number) => Promise<Uint8Array> | Uint8Array;

export interface EmitOptions {
  /**
   * bytes in one yielded buffer and one guest read, 512 B .. 64 MiB, 2 MiB by default; for qcow2
   * rounded down to whole clusters, at least one
   */
  readonly chunkBytes?: number;
  /** guest reads started before their bytes are due; 4 by default, 1 reads strictly in turn */
  readonly maxReadsInFlight?: number;
}

export const DEFAULT_CHUNK_BYTES = 2 * MiB;
export const MIN_CHUNK_BYTES = 512;
export const MAX_CHUNK_BYTES = 64 * MiB;
export const DEFAULT_MAX_READS_IN_FLIGHT = 4;

function checkEmitOptions(options: EmitOptions): { chunkBytes: number; maxReadsInFlight: number } {
  const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  const maxReadsInFlight = options.maxReadsInFlight ?? DEFAULT_MAX_READS_IN_FLIGHT;
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes < MIN_CHUNK_BYTES || chunkBytes > MAX_CHUNK_BYTES) {
    throw new Qcow2LayoutError('bad-option', `chunkBytes must be an integer from ${MIN_CHUNK_BYTES} to ${MAX_CHUNK_BYTES}, got ${chunkBytes}`);
  }
  if (!Number.isSafeInteger(maxReadsInFlight) || maxReadsInFlight < 1 || maxReadsInFlight > 64) {
    throw new Qcow2LayoutError('bad-option', `maxReadsInFlight must be an integer from 1 to 64, got ${maxReadsInFlight}`);
  }
  return { chunkBytes, maxReadsInFlight };
}

interface Queued {
  readonly piece: Piece;
  readonly read?: Promise<Uint8Array>;
}

function startRead(readGuest: ReadGuest, offset: number, length: number): Promise<Uint8Array> {
  // Through a promise so that a reader that throws synchronously fails in output order too.
  const read = Promise.resolve().then(() => readGuest(offset, length));
  // The consumer may stop early and never await a read started ahead; that must not surface as an
  // unhandled rejection. Awaiting `read` itself still throws.
  read.catch(() => undefined);
  return read;
}

function place(piece: Piece & { kind: 'read' }, bytes: Uint8Array): Buffer {
  if (!(bytes instanceof Uint8Array) || bytes.length !== piece.length) {
    const actual = bytes instanceof Uint8Array ? bytes.length : -1;
    throw new Qcow2SourceError(piece.guestOffset, piece.length, actual);
  }
  let out = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  if (piece.paddedLength > piece.length) {
    out = Buffer.concat([out, Buffer.alloc(piece.paddedLength - piece.length)]);
  }
  return piece.skip > 0 ? out.subarray(piece.skip) : out;
}

/** The image bytes from `offset` to the end, in order; emitFrom(plan, 0, …) is the whole image. */
export async function* emitFrom(plan: ImagePlan, offset: number, readGuest: ReadGuest, options: EmitOptions = {}): AsyncGenerator<Buffer, void, undefined> {
  const { chunkBytes, maxReadsInFlight } = checkEmitOptions(options);
  if (!Number.isSafeInteger(offset) || offset < 0 || offset > plan.size) {
    throw new Qcow2LayoutError('bad-offset', `offset ${offset} is outside the image [0, ${plan.size}]`);
  }
  const pieces = plan.format === 'qcow2' ? qcow2Pieces(plan, offset, chunkBytes) : rawPieces(plan, offset, chunkBytes);
  const queue: Queued[] = [];
  let readsQueued = 0;
  let exhausted = false;
  // Look ahead past computed pieces (cheap thunks) to start reads early, but only so far.
  const lookahead = maxReadsInFlight * 4 + 4;
  const refill = (): void => {
    while (!exhausted && readsQueued < maxReadsInFlight && queue.length < lookahead) {
      const next = pieces.next();
      if (next.done === true) {
        exhausted = true;
        return;
      }
      const piece = next.value;
      if (piece.kind === 'read') {
        queue.push({ piece, read: startRead(readGuest, piece.guestOffset, piece.length) });
        readsQueued += 1;
      } else {
        queue.push({ piece });
      }
    }
  };
  for (refill(); queue.length > 0; refill()) {
    const { piece, read } = queue.shift() as Queued;
    if (piece.kind === 'computed') {
      yield piece.render();
      continue;
    }
    readsQueued -= 1;
    const bytes = await (read as Promise<Uint8Array>);
    yield place(piece, bytes);
  }
}

/** The whole image, in order. */
export function emit(plan: ImagePlan, readGuest: ReadGuest, options: EmitOptions = {}): AsyncGenerator<Buffer, void, undefined> {
  return emitFrom(plan, 0, readGuest, options);
}
