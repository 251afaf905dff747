// A composed image as a client downloads it: the guest disk the index describes, laid out by the
// same one-pass writer as the host's (qcow2 or raw) from the allocation map it was uploaded with, so
// every download of an image is the same bytes, and those are what the digests fixed at commit hash.
// The chunk table is read a window at a time (4,096 slots, 128 KiB of names), as the writer asks
// for guest bytes: a download holds one window, not the image's table, and on a shared backend its
// reads cost one request per window, not one per read. The writer reads a few ranges ahead (each
// a few chunks, read side by side), so a download keeps a bounded number of chunk reads in flight
// and starts no more once its reader is gone.
import { Readable } from 'node:stream';
import { emitFrom } from '../../qcow2';
import { CHUNK_HASH_BYTES, type ChunkStore } from './chunk-store';
import { CHUNK_BYTES, slotHash, type IndexFile, type IndexHeader } from './image-index';
import { servedPlan } from '../client/logical-layout';

/** Chunk slots [first, first + count) of a table: from memory at commit, from the index file later. */
export type ChunkSlots = (first: number, count: number) => Buffer | Promise<Buffer>;

/** Reads [offset, offset + length) of the disk from its chunks; zeros where a slot holds none. */
export function chunkReader(slots: ChunkSlots, chunks: ChunkStore): (offset: number, length: number) => Promise<Buffer> {
  return async (offset, length) => {
    const out = Buffer.alloc(length);
    const firstSlot = Math.floor(offset / CHUNK_BYTES);
    const table = await slots(firstSlot, Math.ceil((offset + length) / CHUNK_BYTES) - firstSlot);
    const reads: Promise<void>[] = [];
    for (let at = offset; at < offset + length; ) {
      const slot = Math.floor(at / CHUNK_BYTES);
      const slotStart = slot * CHUNK_BYTES;
      const take = Math.min(slotStart + CHUNK_BYTES, offset + length) - at;
      const hash = slotHash(table, slot - firstSlot);
      const into = at - offset;
      const from = at - slotStart;
      // The chunks of one read side by side: each is its own file.
      if (hash !== null) reads.push(chunks.read(hash).then((bytes) => void bytes.copy(out, into, from, from + take)));
      at += take;
    }
    await Promise.all(reads);
    return out;
  };
}

export function servedBytes(header: Pick<IndexHeader, 'map' | 'format'>, slots: ChunkSlots, chunks: ChunkStore, from = 0): AsyncGenerator<Buffer> {
  return emitFrom(servedPlan(header), from, chunkReader(slots, chunks));
}

/** Slots of the chunk table a download reads at once: 1 GiB of disk. */
const TABLE_WINDOW_SLOTS = 4096;

/** The index's slots, read a window at a time: a download's reads, in order, share one read of the table per window. */
export function windowedSlots(index: Pick<IndexFile, 'chunkHashes'>): ChunkSlots {
  let window: { first: number; slots: Promise<Buffer> } | undefined;
  return async (first, count) => {
    if (count > TABLE_WINDOW_SLOTS) return index.chunkHashes(first, count);
    if (window === undefined || first < window.first || first + count > window.first + TABLE_WINDOW_SLOTS) window = { first, slots: index.chunkHashes(first, TABLE_WINDOW_SLOTS) };
    const held = window;
    const from = (first - held.first) * CHUNK_HASH_BYTES;
    return (await held.slots).subarray(from, from + count * CHUNK_HASH_BYTES);
  };
}

/** The download of an open index; the index file is closed when the stream ends or is destroyed. */
export function servedStream(index: IndexFile, chunks: ChunkStore): Readable {
  const stream = Readable.from(servedBytes(index.header, windowedSlots(index), chunks), { objectMode: false });
  // 'close' comes after the end and after a destroy, even one before the first read.
  stream.once('close', () => void index.close().catch(() => undefined));
  return stream;
}
