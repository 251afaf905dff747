// A new index written as its commit composes it, a window of its chunk table at a time, so a
// commit holds ~1 MiB of table whatever the disk's size (it is 128 MiB per TiB). The file is made
// under a temporary name: the header first, with room for the served size and digests that are
// known only at the end; the table's windows in increasing order, each starting as the parent's
// (an incremental) or zeros, the logical digest fed from each window as it is written (a slot's
// chunk name is its block hash); then the header is written again in place, the file fsynced and
// renamed over the index's name: an index is whole or absent.
import { open, rm, type FileHandle } from 'node:fs/promises';
import { LOGICAL_DIGEST_ALGORITHM, LogicalDigest } from '../../qcow2';
import { CHUNK_HASH_BYTES } from './chunk-store';
import { CHUNK_BYTES, chunkCount, encodeIndexHeader, slotHash, type IndexFile, type IndexHeader } from './image-index';
import type { ChunkSlots } from './served-image';

/** Slots of a table held at once: 1 MiB of hashes. */
const WINDOW_SLOTS = 32 * 1024;
const ZERO_WINDOW = Buffer.alloc(WINDOW_SLOTS * CHUNK_HASH_BYTES);

/**
 * One table of the file (chunk slots, or block hashes), written in increasing slot order a window
 * at a time. A window is loaded from `base` (the parent's same table) or zeros when reached, and
 * written out when left, so windows nobody changed are copied from the parent too.
 */
export class TableWindows {
  private window = Buffer.alloc(0);
  /** the window held, -1 before the first */
  private current = -1;

  constructor(
    private readonly file: FileHandle,
    /** where the table starts in the file */
    private readonly at: number,
    readonly slots: number,
    private readonly base: ChunkSlots | null,
    /** every window once written, in order */
    private readonly onWritten?: (window: Buffer) => void,
  ) {}

  /** Slots [first, first + count) as a view into the window (a block's slots never straddle two). */
  async view(first: number, count: number): Promise<Buffer> {
    await this.moveTo(Math.floor(first / WINDOW_SLOTS));
    const from = (first - this.current * WINDOW_SLOTS) * CHUNK_HASH_BYTES;
    return this.window.subarray(from, from + count * CHUNK_HASH_BYTES);
  }

  /** Writes every window left, up to the table's end. */
  finish(): Promise<void> {
    return this.moveTo(Math.ceil(this.slots / WINDOW_SLOTS));
  }

  private async moveTo(index: number): Promise<void> {
    if (index === this.current) return;
    if (index < this.current) throw new Error(`table windows go forward only (at ${this.current}, asked ${index})`);
    if (this.current >= 0) await this.writeOut();
    for (let w = this.current + 1; w <= index; w++) {
      const first = w * WINDOW_SLOTS;
      const count = Math.max(0, Math.min(WINDOW_SLOTS, this.slots - first));
      this.window = this.base === null ? Buffer.alloc(count * CHUNK_HASH_BYTES) : Buffer.from(await this.base(first, count));
      this.current = w;
      if (w < index) await this.writeOut();
    }
  }

  private async writeOut(): Promise<void> {
    await writeAll(this.file, this.window, this.at + this.current * WINDOW_SLOTS * CHUNK_HASH_BYTES);
    this.onWritten?.(this.window);
  }
}

async function writeAll(file: FileHandle, bytes: Buffer, position: number): Promise<void> {
  for (let done = 0; done < bytes.length; ) {
    const { bytesWritten } = await file.write(bytes, done, bytes.length - done, position + done);
    done += bytesWritten;
  }
}

/** The served image's size, from its plan (its md5 and sha512 come after activation, into the record). */
export type ServedFacts = Pick<IndexHeader, 'size'>;

const PLACEHOLDER: ServedFacts = { size: Number.MAX_SAFE_INTEGER };

export class IndexWriter {
  /** the logical digest, fed the chunk names as their windows are written */
  private readonly digest: LogicalDigest;
  private digestedSlots = 0;
  readonly chunks: TableWindows;

  private constructor(
    private readonly file: FileHandle,
    readonly tempPath: string,
    private readonly header: Omit<IndexHeader, keyof ServedFacts | 'md5' | 'sha512'>,
    private readonly headerBytes: number,
    parent: IndexFile | null,
  ) {
    this.digest = new LogicalDigest(header.virtualSize);
    const feed = (window: Buffer): void => {
      // A window of zero slots (holes, zeros) names no chunk: the digest fills those blocks in on its own.
      if (window.equals(ZERO_WINDOW.subarray(0, window.length))) {
        this.digestedSlots += window.length / CHUNK_HASH_BYTES;
        return;
      }
      for (let i = 0; i * CHUNK_HASH_BYTES < window.length; i++, this.digestedSlots++) {
        const hash = slotHash(window, i);
        if (hash !== null) this.digest.updateBlockHash(this.digestedSlots * CHUNK_BYTES, hash);
      }
    };
    this.chunks = new TableWindows(file, headerBytes, chunkCount(header.virtualSize), parent === null ? null : (first, count) => parent.chunkHashes(first, count), feed);
  }

  /** A new index file at `tempPath` (the caller's temporary name beside the index). */
  static async create(tempPath: string, tableHeader: Omit<IndexHeader, keyof ServedFacts | 'md5' | 'sha512' | 'digest'>, parent: IndexFile | null): Promise<IndexWriter> {
    const header = { ...tableHeader, digest: LOGICAL_DIGEST_ALGORITHM };
    const file = await open(tempPath, 'wx+', 0o600);
    try {
      const bytes = encodeIndexHeader({ ...header, ...PLACEHOLDER });
      await writeAll(file, bytes, 0);
      return new IndexWriter(file, tempPath, header, bytes.length, parent);
    } catch (err) {
      await file.close();
      await rm(tempPath, { force: true });
      throw err;
    }
  }

  /** Writes the windows left; from here on the chunk slots are read back from the file. */
  async finishTables(): Promise<{ logicalDigest: string; chunkSlots: ChunkSlots }> {
    await this.chunks.finish();
    return {
      logicalDigest: this.digest.digest(),
      chunkSlots: async (first, count) => {
        const n = Math.max(0, Math.min(count, this.chunks.slots - first));
        const out = Buffer.alloc(n * CHUNK_HASH_BYTES);
        await this.file.read(out, 0, out.length, this.headerBytes + first * CHUNK_HASH_BYTES);
        return out;
      },
    };
  }

  /** The header with the served facts, in place (no longer than the placeholder's), and the file fsynced. */
  async seal(served: ServedFacts): Promise<void> {
    await writeAll(this.file, encodeIndexHeader({ ...this.header, ...served }, this.headerBytes), 0);
    await this.file.sync();
    await this.file.close();
  }

  /** A failed commit: the file goes. */
  async discard(): Promise<void> {
    await this.file.close().catch(() => undefined);
    await rm(this.tempPath, { force: true });
  }
}
