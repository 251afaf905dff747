// Composition of a new image's chunk table from its logical upload: the staged guest data, laid
// over the parent's chunks where the upload is an incremental. Works one logical-digest block
// (1 MiB, four chunks) at a time: a block the upload does not change keeps the parent's chunks and
// block hash without a read; a changed block is rebuilt (parent's bytes, zeros where the map says
// the disk now reads zero, the sent bytes on top), cut into chunks, and only chunks the store does
// not hold yet are written.
import { createHash } from 'node:crypto';
import { LOGICAL_DIGEST_BLOCK, zeroBlockHash } from '../qcow2';
import { CHUNK_HASH_BYTES, chunkHash, type ChunkStore } from './chunk-store';
import { CHUNK_BYTES, CHUNKS_PER_BLOCK, blockCount, chunkCount, setSlotHash, slotHash, type ImageIndex } from './image-index';
import { sentPieces, type LogicalLayout, type Piece } from './logical-layout';

export interface ComposeInput {
  layout: LogicalLayout;
  /** the parent's index for an incremental (same virtual size, checked by the caller) */
  parent: ImageIndex | null;
  /** `length` bytes of the staged data from `offset` */
  readStaged: (offset: number, length: number) => Promise<Buffer>;
  chunks: ChunkStore;
}

export interface Composed {
  chunks: Buffer;
  blocks: Buffer;
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
  const { layout, parent, chunks } = input;
  const virtualSize = layout.map.virtualSize;
  const table = Buffer.alloc(chunkCount(virtualSize) * CHUNK_HASH_BYTES);
  const blocks = Buffer.alloc(blockCount(virtualSize) * CHUNK_HASH_BYTES);
  const changed: Piece[] = (layout.changed ?? [[0, virtualSize]]).map(([offset, length]) => ({ offset, length }));
  const pieces = stagedPieces(layout);
  const written: Buffer[] = [];
  let writtenBytes = 0;
  let c = 0;
  let p = 0;
  for (let b = 0; b < blocks.length / CHUNK_HASH_BYTES; b++) {
    const start = b * LOGICAL_DIGEST_BLOCK;
    const end = Math.min(virtualSize, start + LOGICAL_DIGEST_BLOCK);
    while (c < changed.length && end0(changed[c]) <= start) c++;
    while (p < pieces.length && end0(pieces[p]) <= start) p++;
    const changes = overlapping(changed, c, start, end);
    if (changes.length === 0 && parent !== null) {
      parent.chunks.copy(table, b * CHUNKS_PER_BLOCK * CHUNK_HASH_BYTES, b * CHUNKS_PER_BLOCK * CHUNK_HASH_BYTES, Math.min(parent.chunks.length, (b + 1) * CHUNKS_PER_BLOCK * CHUNK_HASH_BYTES));
      parent.blocks.copy(blocks, b * CHUNK_HASH_BYTES, b * CHUNK_HASH_BYTES, (b + 1) * CHUNK_HASH_BYTES);
      continue;
    }
    const sent = overlapping(pieces, p, start, end);
    if (parent === null && sent.length === 0) {
      // Nothing of a full upload lands here: a block of zeros, no chunk, its hash known.
      zeroBlockHash(end - start).copy(blocks, b * CHUNK_HASH_BYTES);
      continue;
    }
    const content = parent === null ? Buffer.alloc(end - start) : await parentBlock(parent, chunks, b, end - start);
    for (const r of changes) content.fill(0, Math.max(r.offset, start) - start, Math.min(end0(r), end) - start);
    for (const piece of sent) {
      const from = Math.max(piece.offset, start);
      const to = Math.min(end0(piece), end);
      (await input.readStaged(piece.staged + (from - piece.offset), to - from)).copy(content, from - start);
    }
    createHash('sha256').update(content).digest().copy(blocks, b * CHUNK_HASH_BYTES);
    for (let i = 0; i * CHUNK_BYTES < content.length; i++) {
      const bytes = content.subarray(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES);
      const slot = b * CHUNKS_PER_BLOCK + i;
      if (bytes.equals(ZERO_CHUNK.subarray(0, bytes.length))) {
        setSlotHash(table, slot, null);
        continue;
      }
      const hash = chunkHash(bytes);
      setSlotHash(table, slot, hash);
      if (await chunks.put(hash, bytes)) {
        written.push(hash);
        writtenBytes += bytes.length;
      }
    }
  }
  return { chunks: table, blocks, written, writtenBytes };
}

function end0(r: Piece | undefined): number {
  return r === undefined ? 0 : r.offset + r.length;
}

function overlapping<T extends Piece>(list: readonly T[], from: number, start: number, end: number): T[] {
  const out: T[] = [];
  for (let i = from; i < list.length && (list[i] as T).offset < end; i++) if (end0(list[i]) > start) out.push(list[i] as T);
  return out;
}

async function parentBlock(parent: ImageIndex, chunks: ChunkStore, block: number, length: number): Promise<Buffer> {
  const content = Buffer.alloc(length);
  for (let i = 0; i * CHUNK_BYTES < length; i++) {
    const hash = slotHash(parent.chunks, block * CHUNKS_PER_BLOCK + i);
    if (hash !== null) (await chunks.read(hash)).copy(content, i * CHUNK_BYTES);
  }
  return content;
}
