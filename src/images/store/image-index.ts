// A composed image's index under <dataDir>/indexes/<id>.idx: which chunk holds each 256 KiB of the
// guest disk (its name is also the logical digest's block hash there, so the digest is derived from
// the table without reading a byte), the allocation map the image is served from, and the served
// bytes' size (their md5 and sha512 are computed after activation, into the image's record). Written atomically: an index is whole or absent. Layout: magic, u32
// header length, JSON header, chunk hashes (32 bytes each; 32 zero bytes for a chunk of zeros, which
// is not stored). An index written before the 256 KiB digest (no `digest` in its header) also holds
// the SHA-256 of every 1 MiB block after its chunk table; it is read as before, its block table unused.
//
// An index is read through a handle, a window of its tables at a time: its tables are 160 MiB per
// TiB of disk, and a download, a collection or a start-up must not hold them whole (Node cannot
// even read a file over 2 GiB at once). What the file says is checked before it sizes anything: a
// header no longer than the largest layout the cap allows, a disk within the cap, a file exactly as
// long as the header says. An index that fails is quarantined (moved aside, reported), never left
// in the way of a delete, a collection or a start.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { z } from 'zod';
import { LOGICAL_DIGEST_ALGORITHM, LOGICAL_DIGEST_BLOCK } from '../../qcow2';
import { TEMP_SUFFIX, fsyncDirectory } from '../../fs/atomic-file';
import { CHUNK_HASH_BYTES } from './chunk-store';
import { ImageIdSchema } from '../client/image-record';
import { layoutBodyLimit } from './layout-bounds';
import { EncodedMapSchema } from '../client/logical-layout';
import { errnoCode } from '../../contract';
import type { RemoteIndexes, RemoteIndexReader } from './store-backend';

export const CHUNK_BYTES = LOGICAL_DIGEST_BLOCK;
/** The block of the logical digest an index before the 256 KiB digest holds a table of. */
const OLD_DIGEST_BLOCK = 1024 * 1024;
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
    /** the served bytes' digests, in indexes committed before they were computed after activation (the record holds them now) */
    md5: z.string().regex(/^[0-9a-f]{32}$/).optional(),
    sha512: z.string().regex(/^[0-9a-f]{128}$/).optional(),
    parent: ImageIdSchema.nullable(),
    /** the logical digest derives from the chunk table; absent: an older index, with a 1 MiB block table after it */
    digest: z.literal(LOGICAL_DIGEST_ALGORITHM).optional(),
  })
  .strict();
export type IndexHeader = z.infer<typeof IndexHeaderSchema>;

export const chunkCount = (virtualSize: number): number => Math.ceil(virtualSize / CHUNK_BYTES);

export function slotHash(table: Buffer, i: number): Buffer | null {
  const hash = table.subarray(i * CHUNK_HASH_BYTES, (i + 1) * CHUNK_HASH_BYTES);
  return hash.equals(ZERO_HASH) ? null : hash;
}

/** Adds the name of every chunk a window of the chunk table holds to `into`. */
export function referencedChunks(table: Buffer, into: Set<string>): void {
  for (let i = 0; i * CHUNK_HASH_BYTES < table.length; i++) {
    const hash = slotHash(table, i);
    if (hash !== null) into.add(hash.toString('hex'));
  }
}

export function setSlotHash(table: Buffer, i: number, hash: Buffer | null): void {
  (hash ?? ZERO_HASH).copy(table, i * CHUNK_HASH_BYTES);
}

/**
 * Magic, length and JSON of a header; with `padTo`, padded with spaces (JSON allows them) to that
 * many bytes in all, so it can be written again in place over a longer placeholder.
 */
export function encodeIndexHeader(header: IndexHeader, padTo?: number): Buffer {
  const json = Buffer.from(JSON.stringify(IndexHeaderSchema.parse(header)));
  const length = padTo === undefined ? json.length : padTo - MAGIC.length - 4;
  if (json.length > length) throw new ImageIndexError(`image index header of ${json.length} bytes does not fit the ${length} reserved`);
  const out = Buffer.alloc(MAGIC.length + 4 + length, ' ');
  MAGIC.copy(out);
  out.writeUInt32BE(length, MAGIC.length);
  json.copy(out, MAGIC.length + 4);
  return out;
}

/** Bytes of the tables an index holds after its header. */
const tablesBytes = (header: Pick<IndexHeader, 'virtualSize' | 'digest'>): number =>
  (chunkCount(header.virtualSize) + (header.digest === undefined ? Math.ceil(header.virtualSize / OLD_DIGEST_BLOCK) : 0)) * CHUNK_HASH_BYTES;

/** Slots of a table read at once when a whole table is walked: 1 MiB of hashes. */
const WINDOW_SLOTS = 32 * 1024;

/** Positional reads of an index: a local file's handle, or ranges of a shared backend's object. */
type IndexReader = Pick<FileHandle, 'close'> & { read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }> };

function remoteReader(remote: RemoteIndexReader): IndexReader {
  return {
    async read(buffer, offset, length, position) {
      // Never past the object's end: a range beyond it is the object store's error, not a short read.
      const bytes = await remote.read(position, Math.max(0, Math.min(length, remote.size - position)));
      bytes.copy(buffer, offset);
      return { bytesRead: bytes.length };
    },
    close: () => Promise.resolve(),
  };
}

/** An index open for reading: its checked header, and its tables read a window at a time. */
export class IndexFile {
  constructor(
    readonly header: IndexHeader,
    private readonly handle: IndexReader,
    /** where the chunk table starts in the file */
    private readonly start: number,
  ) {}

  get chunkSlots(): number {
    return chunkCount(this.header.virtualSize);
  }

  /** Chunk slots [first, first + count) (cut at the table's end). */
  chunkHashes(first: number, count: number): Promise<Buffer> {
    const n = Math.max(0, Math.min(count, this.chunkSlots - first));
    return this.readAt(this.start + first * CHUNK_HASH_BYTES, n * CHUNK_HASH_BYTES);
  }

  /** The chunk table, a window at a time. */
  async *chunkTable(): AsyncGenerator<Buffer> {
    for (let first = 0; first < this.chunkSlots; first += WINDOW_SLOTS) yield await this.chunkHashes(first, WINDOW_SLOTS);
  }

  close(): Promise<void> {
    return this.handle.close();
  }

  private async readAt(position: number, length: number): Promise<Buffer> {
    const out = Buffer.alloc(length);
    for (let done = 0; done < out.length; ) {
      const { bytesRead } = await this.handle.read(out, done, out.length - done, position + done);
      if (bytesRead === 0) throw new ImageIndexError(`image index ends at ${position + done}, its header says more`);
      done += bytesRead;
    }
    return out;
  }

}

export interface ImageIndexesOptions {
  dir: string;
  /** where unreadable indexes are moved, for an operator to look at */
  quarantineDir: string;
  /** the image size cap: no index of a larger disk (or a longer header) was ever written under it */
  maxImageBytes: number;
  /** told of every index quarantined, with why */
  onQuarantine: (id: string, reason: string) => Promise<void>;
  /** a shared backend's indexes; `dir` then only holds the temporary files of indexes being written */
  remote?: RemoteIndexes;
}

/** The indexes directory: one file per composed image, named by its validated id. */
export class ImageIndexes {
  private readonly maxHeaderBytes: number;
  /** ids whose index is being written: their temp files are not a crash's */
  private readonly writing = new Map<string, number>();

  private constructor(private readonly options: ImageIndexesOptions) {
    this.maxHeaderBytes = layoutBodyLimit(options.maxImageBytes);
  }

  static async open(options: ImageIndexesOptions): Promise<ImageIndexes> {
    await mkdir(options.dir, { recursive: true });
    return new ImageIndexes(options);
  }

  /**
   * The image's index open for reading (the caller closes it), or undefined when it has none — a
   * plain upload, none yet, or one that could not be read and is quarantined now.
   */
  async open(id: string): Promise<IndexFile | undefined> {
    let handle: IndexReader;
    let size: number;
    if (this.options.remote !== undefined) {
      const remote = await this.options.remote.open(id);
      if (remote === undefined) return undefined;
      handle = remoteReader(remote);
      size = remote.size;
    } else {
      try {
        const file = await open(this.pathOf(id), 'r');
        handle = file;
        size = await file.stat().then(
          (st) => st.size,
          async (err: unknown) => {
            await file.close();
            throw err;
          },
        );
      } catch (err) {
        if (errnoCode(err) === 'ENOENT') return undefined;
        throw err;
      }
    }
    try {
      return await this.check(handle, size);
    } catch (err) {
      await handle.close();
      if (!(err instanceof ImageIndexError)) throw err;
      await this.quarantine(id, err.message);
      return undefined;
    }
  }

  /** The image's index header only (what a size or an existence check needs), as open() finds it. */
  async header(id: string): Promise<IndexHeader | undefined> {
    const file = await this.open(id);
    if (file === undefined) return undefined;
    await file.close();
    return file.header;
  }

  /** A temporary name for a new index of `id` beside it, which ids() leaves alone until releaseTemp(). */
  claimTemp(id: string): string {
    const path = this.pathOf(id);
    this.writing.set(id, (this.writing.get(id) ?? 0) + 1);
    return join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`);
  }

  releaseTemp(id: string): void {
    const n = (this.writing.get(id) ?? 1) - 1;
    if (n > 0) this.writing.set(id, n);
    else this.writing.delete(id);
  }

  /** A whole, fsynced index file at `tempPath` becomes the index of `id`, durably. */
  async install(id: string, tempPath: string): Promise<void> {
    if (this.options.remote !== undefined) {
      await this.options.remote.install(id, tempPath);
      await rm(tempPath, { force: true });
      return;
    }
    await rename(tempPath, this.pathOf(id));
    await fsyncDirectory(this.options.dir);
  }

  async remove(id: string): Promise<void> {
    if (this.options.remote !== undefined) return this.options.remote.remove(id);
    await rm(this.pathOf(id), { force: true });
  }

  /**
   * Ids of every index on disk; anything else in the directory (a crash's temp file) is removed,
   * but not the temp file of an index being written now (a commit runs beside a collection).
   */
  async ids(): Promise<string[]> {
    const out: string[] = this.options.remote === undefined ? [] : await this.options.remote.ids();
    for (const name of await readdir(this.options.dir)) {
      const id = name.endsWith('.idx') ? name.slice(0, -4) : '';
      if (ImageIdSchema.safeParse(id).success) {
        if (this.options.remote === undefined) out.push(id);
      }
      else if (!this.writing.has(/^\.([^.]+)\.idx\./.exec(name)?.[1] ?? '')) await rm(join(this.options.dir, name), { force: true });
    }
    return out;
  }

  /** Bounds first, from the file's own size, then the header, then the whole-file length. */
  private async check(handle: IndexReader, size: number): Promise<IndexFile> {
    const prefix = Buffer.alloc(MAGIC.length + 4);
    const { bytesRead } = await handle.read(prefix, 0, prefix.length, 0);
    if (bytesRead < prefix.length || !prefix.subarray(0, MAGIC.length).equals(MAGIC)) throw new ImageIndexError('not an image index');
    const headerLength = prefix.readUInt32BE(MAGIC.length);
    if (headerLength > this.maxHeaderBytes) throw new ImageIndexError(`image index header of ${headerLength} bytes is longer than any layout the image size cap allows`);
    if (prefix.length + headerLength > size) throw new ImageIndexError('image index header is cut short');
    const text = Buffer.alloc(headerLength);
    await handle.read(text, 0, headerLength, prefix.length);
    const header = parseHeader(text);
    const largest = Math.max(header.virtualSize, header.size);
    if (largest > this.options.maxImageBytes) throw new ImageIndexError(`image index of a ${header.virtualSize}-byte disk served as ${header.size} bytes, above the image size cap of ${this.options.maxImageBytes} bytes`);
    const start = prefix.length + headerLength;
    const expected = start + tablesBytes(header);
    if (size !== expected) throw new ImageIndexError(`image index holds ${size} bytes, its header says ${expected}`);
    return new IndexFile(header, handle, start);
  }

  private async quarantine(id: string, reason: string): Promise<void> {
    if (this.options.remote !== undefined) {
      await this.options.remote.quarantine(id);
      await this.options.onQuarantine(id, reason);
      return;
    }
    await mkdir(this.options.quarantineDir, { recursive: true });
    try {
      await rename(this.pathOf(id), join(this.options.quarantineDir, `${id}.${Date.now()}.idx`));
    } catch (err) {
      // Another reader of the same index moved it first, and reported it.
      if (errnoCode(err) === 'ENOENT') return;
      throw err;
    }
    await this.options.onQuarantine(id, reason);
  }

  private pathOf(id: string): string {
    return join(this.options.dir, `${ImageIdSchema.parse(id)}.idx`);
  }
}

function parseHeader(text: Buffer): IndexHeader {
  let json: unknown;
  try {
    json = JSON.parse(text.toString('utf8'));
  } catch {
    throw new ImageIndexError('image index header is not JSON');
  }
  const parsed = IndexHeaderSchema.safeParse(json);
  if (!parsed.success) throw new ImageIndexError(`image index header: ${parsed.error.message}`);
  return parsed.data;
}
