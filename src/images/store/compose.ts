// Composition of a new image's chunk table from its logical upload (protocol 1: the staged bytes
// are guest data): the staged data, laid over the parent's chunks where the upload is an
// incremental. Works one chunk (256 KiB, the logical digest's block) at a time: a chunk the upload
// does not change keeps the parent's without a read; a changed one is rebuilt (parent's bytes, zeros
// where the map says the disk now reads zero, the sent bytes on top), named by its SHA-256, and
// written only when the store does not hold it. A chunk the disk now reads as zeros (nothing sent
// lands in it, and the parent had none there or the changed ranges cover it) costs no hashing. So
// the work follows the data sent and the chunks it touches, not the disk's virtual size; the
// logical digest is derived from the table afterwards (index-writer.ts).
import { CHUNK_HASH_BYTES, chunkHash, type ChunkBatch, type ChunkStore } from './chunk-store';
import { CHUNK_BYTES, setSlotHash, slotHash } from './image-index';
import type { TableWindows } from './index-writer';
import { sentPieces, type LogicalLayout, type Piece } from '../client/logical-layout';

export interface ComposeInput {
  layout: LogicalLayout;
  /** an incremental: the tables below start as its parent's (same virtual size, checked by the caller) */
  incremental: boolean;
  /** the new index's chunk table, written as the chunks go */
  table: TableWindows;
  /** `length` bytes of the staged data from `offset` */
  readStaged: (offset: number, length: number) => Promise<Buffer>;
  /** where the parent's chunks are read */
  chunks: ChunkStore;
  /** where the new chunks are written (and every chunk named, pinned) */
  batch: ChunkBatch;
}

export interface Composed {
  /** hashes of the chunks this compose wrote (the store did not hold them) */
  written: Buffer[];
  writtenBytes: number;
}

const ZERO_CHUNK = Buffer.alloc(CHUNK_BYTES);

/** A sent piece with where its bytes sit in the staged data. */
interface StagedPiece extends Piece {
  staged: number;
}

function stagedPieces(layout: LogicalLayout): StagedPiece[] {
  let staged = 0;
  return sentPieces(layout).map((p) => {
    const out = { ...p, staged };
    staged += p.length;
    return out;
  });
}

export async function composeChunks(input: ComposeInput): Promise<Composed> {
  const { layout, incremental, chunks, batch } = input;
  const virtualSize = layout.map.virtualSize;
  const changed: Piece[] = (layout.changed ?? [[0, virtualSize]]).map(([offset, length]) => ({ offset, length }));
  const pieces = stagedPieces(layout);
  const written: Buffer[] = [];
  let writtenBytes = 0;
  let c = 0;
  let p = 0;
  for (let b = 0; b < input.table.slots; b++) {
    let start = b * CHUNK_BYTES;
    while (c < changed.length && end0(changed[c]) <= start) c++;
    while (p < pieces.length && end0(pieces[p]) <= start) p++;
    // Straight to the next slot anything can change: a full upload's table starts as zeros, so
    // only slots data is sent to; an incremental's starts as its parent's, so only changed slots.
    const next = incremental ? changed[c]?.offset : pieces[p]?.offset;
    if (next === undefined) break;
    if (next >= start + CHUNK_BYTES) {
      b = Math.floor(next / CHUNK_BYTES);
      start = b * CHUNK_BYTES;
    }
    const end = Math.min(virtualSize, start + CHUNK_BYTES);
    const changes = overlapping(changed, c, start, end);
    if (changes.length === 0) continue;
    const sent = overlapping(pieces, p, start, end);
    // This chunk's slot in the window being written (the parent's until rewritten here).
    const table = await input.table.view(b, 1);
    if (sent.length === 0 && (!incremental || covers(changes, start, end) || emptySlots(table))) {
      // Nothing sent lands here and nothing of the parent shows through: a chunk of zeros.
      table.fill(0);
      continue;
    }
    const content = incremental ? await parentBlock(table, chunks, end - start) : Buffer.alloc(end - start);
    for (const r of changes) content.fill(0, Math.max(r.offset, start) - start, Math.min(end0(r), end) - start);
    if (sent.length > 0) await placeSent(content, sent, start, end, input.readStaged);
    if (content.equals(ZERO_CHUNK.subarray(0, content.length))) {
      setSlotHash(table, 0, null);
      continue;
    }
    const hash = chunkHash(content);
    setSlotHash(table, 0, hash);
    if (await batch.put(hash, content)) {
      written.push(hash);
      writtenBytes += content.length;
    }
  }
  return { written, writtenBytes };
}

/** The sent bytes of a block over its content; its pieces sit side by side in the staged data, so one read takes them all. */
async function placeSent(content: Buffer, sent: readonly StagedPiece[], start: number, end: number, readStaged: ComposeInput['readStaged']): Promise<void> {
  const stagedAt = (piece: StagedPiece, offset: number): number => piece.staged + (offset - piece.offset);
  const first = sent[0] as StagedPiece;
  const last = sent[sent.length - 1] as StagedPiece;
  const spanFrom = stagedAt(first, Math.max(first.offset, start));
  const span = await readStaged(spanFrom, stagedAt(last, Math.min(end0(last), end)) - spanFrom);
  for (const piece of sent) {
    const from = Math.max(piece.offset, start);
    const to = Math.min(end0(piece), end);
    span.copy(content, from - start, stagedAt(piece, from) - spanFrom, stagedAt(piece, to) - spanFrom);
  }
}

/** The ranges cover [start, end) whole. */
function covers(ranges: readonly Piece[], start: number, end: number): boolean {
  let at = start;
  for (const r of ranges) {
    if (r.offset > at) return false;
    at = Math.max(at, end0(r));
  }
  return at >= end;
}

function emptySlots(table: Buffer): boolean {
  for (let i = 0; i * CHUNK_HASH_BYTES < table.length; i++) if (slotHash(table, i) !== null) return false;
  return true;
}

function end0(r: Piece | undefined): number {
  return r === undefined ? 0 : r.offset + r.length;
}

function overlapping<T extends Piece>(list: readonly T[], from: number, start: number, end: number): T[] {
  const out: T[] = [];
  for (let i = from; i < list.length && (list[i] as T).offset < end; i++) if (end0(list[i]) > start) out.push(list[i] as T);
  return out;
}

/** The parent's bytes of a block, from its slots (the table's, before this block is rewritten). */
async function parentBlock(table: Buffer, chunks: ChunkStore, length: number): Promise<Buffer> {
  const content = Buffer.alloc(length);
  for (let i = 0; i * CHUNK_HASH_BYTES < table.length; i++) {
    const hash = slotHash(table, i);
    if (hash !== null) (await chunks.read(hash)).copy(content, i * CHUNK_BYTES);
  }
  return content;
}
