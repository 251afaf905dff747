// Protocol 2 of the logical upload (src/images/README.md, "Named chunks"): a full upload whose
// staged bytes are the names of its chunks, not the guest data. The sender names each 256 KiB chunk
// of the disk by its SHA-256, asks the service which names the image's project already holds, sends
// only the others' bytes (each checked against its name on arrival), and stages one 32-byte name per
// slot the layout's data touches. Shared by the host and the service: both derive the same slots.
import { z } from 'zod';

/** The chunk of one slot of the disk: the store's chunk size, the logical digest's block. */
export const NAMED_CHUNK_BYTES = 256 * 1024;
/** A chunk's name: its SHA-256, one staged entry per slot. */
export const CHUNK_NAME_BYTES = 32;

/** POST: which of these names may this upload use without sending their bytes. */
export const KNOWN_CHUNKS_URL = '/v2/images/:image_id/chunks/known';
/** PUT: one chunk's bytes, under its name. */
export const CHUNK_URL = '/v2/images/:image_id/chunks/:chunk';

/** Names in one known-chunks question: 512 name 128 MiB of disk in 34 KiB of JSON, under the service's 64 KiB body limit. */
export const MAX_KNOWN_QUERY = 512;

export const ChunkNameSchema = z.string().regex(/^[0-9a-f]{64}$/, 'a chunk name is 64 lowercase hex digits (its SHA-256)');

export const KnownChunksBodySchema = z.object({ chunks: z.array(ChunkNameSchema).min(1).max(MAX_KNOWN_QUERY) }).strict();
export type KnownChunksBody = z.infer<typeof KnownChunksBodySchema>;

export const KnownChunksAnswerSchema = z.object({ known: z.array(ChunkNameSchema).max(MAX_KNOWN_QUERY) }).strict();
export type KnownChunksAnswer = z.infer<typeof KnownChunksAnswerSchema>;

/** The all-zero name stands for a chunk of zeros, which is neither stored nor sent. */
export const ZERO_CHUNK_NAME = Buffer.alloc(CHUNK_NAME_BYTES);

/**
 * The slots a named upload stages a name for, ascending: every chunk slot a data extent of the map
 * touches. The rest of the disk reads as zeros (holes and zero extents).
 */
export function namedSlots(layout: { map: { extents: readonly (readonly [number, number, string])[] } }): number[] {
  const out: number[] = [];
  for (const [offset, length, kind] of layout.map.extents) {
    if (kind !== 'd') continue;
    const first = Math.max(Math.floor(offset / NAMED_CHUNK_BYTES), (out[out.length - 1] ?? -1) + 1);
    const last = Math.floor((offset + length - 1) / NAMED_CHUNK_BYTES);
    for (let slot = first; slot <= last; slot++) out.push(slot);
  }
  return out;
}

/** Bytes of a slot: the chunk size, the last slot of a disk that is not a whole number of chunks shorter. */
export function slotLength(slot: number, virtualSize: number): number {
  return Math.min(NAMED_CHUNK_BYTES, virtualSize - slot * NAMED_CHUNK_BYTES);
}
