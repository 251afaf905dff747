// A composed image as a client downloads it: the guest disk the index describes, laid out by the
// same one-pass writer as the host's (qcow2 or raw) from the allocation map it was uploaded with, so
// every download of an image is the same bytes, and those are what the digests fixed at commit hash.
// The chunk table is read a window at a time, as the writer asks for guest bytes: a download holds
// the slots of its reads in flight, not the image's table.
import { Readable } from 'node:stream';
import { emitFrom } from '../../qcow2';
import type { ChunkStore } from './chunk-store';
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

/** The download of an open index; the index file is closed when the stream ends or is destroyed. */
export function servedStream(index: IndexFile, chunks: ChunkStore): Readable {
  const stream = Readable.from(servedBytes(index.header, (first, count) => index.chunkHashes(first, count), chunks), { objectMode: false });
  // 'close' comes after the end and after a destroy, even one before the first read.
  stream.once('close', () => void index.close().catch(() => undefined));
  return stream;
}
