// A composed image's index under <dataDir>/indexes/<id>.idx: which chunk holds each 256 KiB of the
// guest disk, the SHA-256 of each 1 MiB block (the logical digest's inner hashes, so an
// incremental's digest costs only its changed blocks), the allocation map the image is served from,
// and the served bytes' size, md5 and sha512, fixed at commit. Written atomically: an index is whole
// or absent. Layout: magic, u32 header length, JSON header, chunk hashes, block hashes (32 bytes
// each; 32 zero bytes for a chunk of zeros, which is not stored).
import { createHash } from 'node:crypto';
import { mkdir, open, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { LOGICAL_DIGEST_BLOCK } from '../qcow2';
import { writeFileAtomic } from '../fs/atomic-file';
import { CHUNK_HASH_BYTES } from './chunk-store';
import { ImageIdSchema } from './image-record';
import { EncodedMapSchema } from './logical-layout';

export const CHUNK_BYTES = 256 * 1024;
export const CHUNKS_PER_BLOCK = LOGICAL_DIGEST_BLOCK / CHUNK_BYTES;
const MAGIC = Buffer.from('SNAPIDX1\n');
const ZERO_HASH = Buffer.alloc(CHUNK_HASH_BYTES);

export class ImageIndexError extends Error {
  override readonly name = 'ImageIndexError';
}

const IndexHeaderSchema = z
  .object({
    virtualSize: z.number().int().nonnegative(),
    chunkBytes: z.literal(CHUNK_BYTES),
    format: z.enum(['qcow2', 'raw']),
    map: EncodedMapSchema,
    /** the served image's bytes */
    size: z.number().int().nonnegative(),
    md5: z.string().regex(/^[0-9a-f]{32}$/),
    sha512: z.string().regex(/^[0-9a-f]{128}$/),
    parent: ImageIdSchema.nullable(),
  })
  .strict();
export type IndexHeader = z.infer<typeof IndexHeaderSchema>;

export interface ImageIndex {
  header: IndexHeader;
  /** CHUNK_HASH_BYTES per chunk slot */
  chunks: Buffer;
  /** CHUNK_HASH_BYTES per logical-digest block */
  blocks: Buffer;
}

export const chunkCount = (virtualSize: number): number => Math.ceil(virtualSize / CHUNK_BYTES);
export const blockCount = (virtualSize: number): number => Math.ceil(virtualSize / LOGICAL_DIGEST_BLOCK);

export function slotHash(table: Buffer, i: number): Buffer | null {
  const hash = table.subarray(i * CHUNK_HASH_BYTES, (i + 1) * CHUNK_HASH_BYTES);
  return hash.equals(ZERO_HASH) ? null : hash;
}

export function setSlotHash(table: Buffer, i: number, hash: Buffer | null): void {
  (hash ?? ZERO_HASH).copy(table, i * CHUNK_HASH_BYTES);
}

/** The logical digest of the disk the index describes (qcow2/logical-digest.ts's algorithm). */
export function indexLogicalDigest(index: Pick<ImageIndex, 'blocks'>): string {
  return createHash('sha256').update(index.blocks).digest('hex');
}

/** Hex names of every chunk the index holds. */
export function referencedChunks(index: ImageIndex, into: Set<string>): void {
  for (let i = 0; i * CHUNK_HASH_BYTES < index.chunks.length; i++) {
    const hash = slotHash(index.chunks, i);
    if (hash !== null) into.add(hash.toString('hex'));
  }
}

export function encodeIndex(index: ImageIndex): Buffer {
  const header = Buffer.from(JSON.stringify(IndexHeaderSchema.parse(index.header)));
  const length = Buffer.alloc(4);
  length.writeUInt32BE(header.length);
  return Buffer.concat([MAGIC, length, header, index.chunks, index.blocks]);
}

function decodeHeader(bytes: Buffer): { header: IndexHeader; start: number } {
  if (bytes.length < MAGIC.length + 4 || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) throw new ImageIndexError('not an image index');
  const headerLength = bytes.readUInt32BE(MAGIC.length);
  const start = MAGIC.length + 4;
  if (bytes.length < start + headerLength) throw new ImageIndexError('image index header is cut short');
  let json: unknown;
  try {
    json = JSON.parse(bytes.subarray(start, start + headerLength).toString('utf8'));
  } catch {
    throw new ImageIndexError('image index header is not JSON');
  }
  const parsed = IndexHeaderSchema.safeParse(json);
  if (!parsed.success) throw new ImageIndexError(`image index header: ${parsed.error.message}`);
  return { header: parsed.data, start: start + headerLength };
}

export function decodeIndex(bytes: Buffer): ImageIndex {
  const { header, start } = decodeHeader(bytes);
  const chunksEnd = start + chunkCount(header.virtualSize) * CHUNK_HASH_BYTES;
  const blocksEnd = chunksEnd + blockCount(header.virtualSize) * CHUNK_HASH_BYTES;
  if (bytes.length !== blocksEnd) throw new ImageIndexError(`image index holds ${bytes.length} bytes, its header says ${blocksEnd}`);
  return { header, chunks: bytes.subarray(start, chunksEnd), blocks: bytes.subarray(chunksEnd, blocksEnd) };
}

/** The indexes directory: one file per composed image, named by its validated id. */
export class ImageIndexes {
  private constructor(private readonly dir: string) {}

  static async open(dir: string): Promise<ImageIndexes> {
    await mkdir(dir, { recursive: true });
    return new ImageIndexes(dir);
  }

  /** The image's index, or undefined when it has none (a plain upload, or none yet). */
  async read(id: string): Promise<ImageIndex | undefined> {
    let bytes: Buffer;
    try {
      bytes = await readFile(this.pathOf(id));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    return decodeIndex(bytes);
  }

  /**
   * The image's index header only, or undefined when it has none: what a size or an existence
   * check needs, without reading the chunk table (32 MiB per TiB of disk).
   */
  async header(id: string): Promise<IndexHeader | undefined> {
    let handle;
    try {
      handle = await open(this.pathOf(id), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    try {
      const { size } = await handle.stat();
      const prefix = Buffer.alloc(MAGIC.length + 4);
      await handle.read(prefix, 0, prefix.length, 0);
      const length = prefix.subarray(0, MAGIC.length).equals(MAGIC) ? prefix.readUInt32BE(MAGIC.length) : 0;
      // Bounded by the file before anything is allocated: a damaged length cannot ask for more.
      const bytes = Buffer.alloc(Math.min(prefix.length + length, size));
      const { bytesRead } = await handle.read(bytes, 0, bytes.length, 0);
      const { header, start } = decodeHeader(bytes.subarray(0, bytesRead));
      // The same whole-file check as decodeIndex: a header alone does not make an index.
      const expected = start + (chunkCount(header.virtualSize) + blockCount(header.virtualSize)) * CHUNK_HASH_BYTES;
      if (size !== expected) throw new ImageIndexError(`image index holds ${size} bytes, its header says ${expected}`);
      return header;
    } finally {
      await handle.close();
    }
  }

  write(id: string, index: ImageIndex): Promise<void> {
    return writeFileAtomic(this.pathOf(id), encodeIndex(index));
  }

  async remove(id: string): Promise<void> {
    await rm(this.pathOf(id), { force: true });
  }

  /** Ids of every index on disk; anything else in the directory (a crash's temp file) is removed. */
  async ids(): Promise<string[]> {
    const out: string[] = [];
    for (const name of await readdir(this.dir)) {
      const id = name.endsWith('.idx') ? name.slice(0, -4) : '';
      if (ImageIdSchema.safeParse(id).success) out.push(id);
      else await rm(join(this.dir, name), { force: true });
    }
    return out;
  }

  private pathOf(id: string): string {
    return join(this.dir, `${ImageIdSchema.parse(id)}.idx`);
  }
}
