// A composed image as a client downloads it: the guest disk the index describes, laid out by the
// same one-pass writer as the host's (qcow2 or raw) from the allocation map it was uploaded with, so
// every download of an image is the same bytes, and those are what the digests fixed at commit hash.
import { Readable } from 'node:stream';
import { emitFrom, planImage, type ImagePlan } from '../qcow2';
import type { ChunkStore } from './chunk-store';
import type { StreamHashes } from './hash-pool';
import { CHUNK_BYTES, slotHash, type ImageIndex } from './image-index';
import { decodeMap } from './logical-layout';

export function servedPlan(index: Pick<ImageIndex, 'header'>): ImagePlan {
  return planImage(decodeMap(index.header.map), { format: index.header.format });
}

/** Reads [offset, offset + length) of the disk from its chunks; zeros where a slot holds none. */
export function chunkReader(index: Pick<ImageIndex, 'chunks'>, chunks: ChunkStore): (offset: number, length: number) => Promise<Buffer> {
  return async (offset, length) => {
    const out = Buffer.alloc(length);
    const reads: Promise<void>[] = [];
    for (let at = offset; at < offset + length; ) {
      const slot = Math.floor(at / CHUNK_BYTES);
      const slotStart = slot * CHUNK_BYTES;
      const take = Math.min(slotStart + CHUNK_BYTES, offset + length) - at;
      const hash = slotHash(index.chunks, slot);
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

export function servedBytes(index: Pick<ImageIndex, 'header' | 'chunks'>, chunks: ChunkStore, from = 0): AsyncGenerator<Buffer> {
  return emitFrom(servedPlan(index), from, chunkReader(index, chunks));
}

export function servedStream(index: ImageIndex, chunks: ChunkStore): Readable {
  return Readable.from(servedBytes(index, chunks), { objectMode: false });
}

/** Size, md5 and sha512 of the served bytes (the hashing runs off the event loop). */
export async function servedDigests(index: Pick<ImageIndex, 'header' | 'chunks'>, chunks: ChunkStore, hashes: StreamHashes): Promise<{ size: number; md5: string; sha512: string }> {
  let size = 0;
  try {
    for await (const bytes of servedBytes(index, chunks)) {
      size += bytes.length;
      await hashes.update(bytes);
    }
    return { size, ...(await hashes.digests()) };
  } finally {
    hashes.close();
  }
}
