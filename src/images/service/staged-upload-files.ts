// On-disk state of resumable uploads under <dataDir>/resumable, apart from staging/ (which is
// wiped at every open): <id>.data holds the committed bytes, <id>.json (written atomically) the
// session's size, token and layout, <id>.names (a named upload's) the chunk names it may use, 32 bytes each,
// each fsynced before the service says so. The committed length is the data file's size once fsynced: an append
// truncates a torn tail and fsyncs before it reports, so that size only ever counts whole writes.
import { mkdir, open, readFile, readdir, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { z } from 'zod';
import { TEMP_SUFFIX, fsyncDirectory, writeFileAtomic } from '../../fs/atomic-file';
import { ImageTooLarge } from '../client/image-errors';
import { ImageIdSchema } from '../client/image-record';
import type { RepositoryWarning } from './image-record-repository';
import { LogicalLayoutSchema } from '../client/logical-layout';
import { UploadTokenSchema } from '../client/resumable-wire';
import { errnoCode } from '../../contract';

const SessionMetaSchema = z
  .object({
    imageId: ImageIdSchema,
    size: z.number().int().nonnegative(),
    token: UploadTokenSchema,
    /** the disk staged: the staged bytes are guest data, composed into chunks at commit */
    layout: LogicalLayoutSchema,
  })
  .strict();
export type StagedSessionMeta = z.infer<typeof SessionMetaSchema>;

export interface AppendOutcome {
  /** Bytes on disk after the append: the old length plus every byte written whole. */
  committed: number;
  /** Why the append stopped early (source error, abort, bytes past the size), if it did. */
  error?: unknown;
  /** False when the final truncate/fsync failed: the committed length cannot be trusted. */
  durable: boolean;
}

export class StagedUploadFiles {
  private constructor(private readonly dir: string) {}

  static async open(dir: string): Promise<StagedUploadFiles> {
    await mkdir(dir, { recursive: true });
    return new StagedUploadFiles(dir);
  }

  /**
   * Every intact session on disk with its committed length. Files that do not form one (no meta,
   * unreadable meta, no data, data longer than the size, interrupted atomic writes) are removed.
   */
  async scan(warn: RepositoryWarning): Promise<{ sessions: Map<string, { meta: StagedSessionMeta; committed: number }>; removedIds: string[] }> {
    const found = new Map<string, { meta: StagedSessionMeta; committed: number }>();
    const removedIds: string[] = [];
    const entries = await readdir(this.dir);
    const ids = new Set<string>();
    for (const entry of entries) {
      const match = /^([^.]+)\.(json|data|names)$/.exec(entry);
      if (match?.[1] !== undefined && ImageIdSchema.safeParse(match[1]).success) ids.add(match[1]);
      else await rm(join(this.dir, entry), { force: true, recursive: true });
    }
    for (const id of ids) {
      const meta = await this.readMeta(id, warn);
      const committed = meta === undefined ? undefined : await syncedSize(this.dataPath(id));
      if (meta !== undefined && committed !== undefined && committed <= meta.size) found.set(id, { meta, committed });
      else {
        await this.remove(id);
        removedIds.push(id);
      }
    }
    if (entries.some((e) => e.endsWith(TEMP_SUFFIX))) await fsyncDirectory(this.dir);
    return { sessions: found, removedIds };
  }

  /** A new empty session: data file first, then the meta that makes it a session. */
  async create(meta: StagedSessionMeta): Promise<void> {
    const id = ImageIdSchema.parse(meta.imageId);
    const handle = await open(this.dataPath(id), 'w', 0o600);
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await writeFileAtomic(this.metaPath(id), JSON.stringify(SessionMetaSchema.parse(meta)));
  }

  /** Removes both files (meta first: without it the data is garbage to scan). */
  async remove(id: string): Promise<void> {
    await rm(this.metaPath(id), { force: true });
    await rm(this.dataPath(id), { force: true });
    await rm(this.namesPath(id), { force: true });
    await fsyncDirectory(this.dir);
  }

  /** Adds chunk names (32 bytes each) to the session's durable list of names it may use. */
  async appendNames(id: string, names: Buffer): Promise<void> {
    const handle = await open(this.namesPath(id), 'a', 0o600);
    try {
      await writeAll(handle, names, (await handle.stat()).size);
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  /** The session's chunk names; a torn last entry (a crash inside a write) is not one. */
  async readNames(id: string): Promise<Buffer> {
    try {
      const bytes = await readFile(this.namesPath(id));
      return bytes.subarray(0, bytes.length - (bytes.length % 32));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return Buffer.alloc(0);
      throw err;
    }
  }

  dataPath(id: string): string {
    return join(this.dir, `${ImageIdSchema.parse(id)}.data`);
  }

  /**
   * Writes `source` at `from`, never past `limit` bytes in total (the rest is refused with
   * ImageTooLarge). Whatever stops it, the bytes written whole are kept, fsynced, and counted in
   * `committed`.
   */
  async append(id: string, from: number, source: Readable, options: { limit: number; signal: AbortSignal }): Promise<AppendOutcome> {
    const handle = await open(this.dataPath(id), 'r+');
    let position = from;
    let error: unknown;
    // HTTP bodies arrive in 16–64 KiB pieces: gathered into larger writes, the file sees a few
    // hundred operations per 256 MiB instead of thousands.
    const pending: Buffer[] = [];
    let pendingBytes = 0;
    const flush = async (): Promise<void> => {
      if (pendingBytes === 0) return;
      const block = pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending, pendingBytes);
      pending.length = 0;
      pendingBytes = 0;
      await writeAll(handle, block, position);
      position += block.length;
    };
    try {
      // destroyOnReturn false: on an early stop the caller still owns the request and answers it.
      for await (const chunk of source.iterator({ destroyOnReturn: false })) {
        if (options.signal.aborted) throw new Error('append aborted: the image was deleted');
        const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
        const room = options.limit - position - pendingBytes;
        const part = buf.length > room ? buf.subarray(0, room) : buf;
        if (part.length > 0) {
          pending.push(part);
          pendingBytes += part.length;
          // Also whenever nothing more is waiting: a slow sender's bytes reach the disk at once.
          if (pendingBytes >= WRITE_BLOCK || source.readableLength === 0) await flush();
        }
        if (part.length < buf.length) throw new ImageTooLarge(`Upload exceeds its declared size of ${options.limit} bytes; bytes past it were not kept`);
      }
    } catch (err) {
      error = err;
    }
    // Bytes that arrived whole are kept whatever stopped the body (a dropped connection above all).
    try {
      await flush();
    } catch (err) {
      error ??= err;
    }
    let durable = true;
    try {
      // A write that failed half-way may have left a torn tail past `position`.
      await handle.truncate(position);
      await handle.sync();
    } catch (err) {
      error ??= err;
      durable = false;
    } finally {
      await handle.close().catch(() => undefined);
    }
    return error === undefined ? { committed: position, durable } : { committed: position, error, durable };
  }

  private async readMeta(id: string, warn: RepositoryWarning): Promise<StagedSessionMeta | undefined> {
    let text: string;
    try {
      text = await readFile(this.metaPath(id), 'utf8');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw err;
    }
    try {
      const parsed: unknown = JSON.parse(text);
      if (isPlainSession(parsed)) {
        warn({ imageId: id }, 'discarding a resumable upload session without a layout (a previous version\'s plain upload): it cannot be resumed, its image is killed');
        return undefined;
      }
      const meta = SessionMetaSchema.parse(parsed);
      if (meta.imageId !== id) throw new Error(`session for ${meta.imageId} stored as ${id}`);
      return meta;
    } catch (err) {
      warn({ imageId: id, err }, 'discarding unreadable resumable upload session');
      return undefined;
    }
  }

  private namesPath(id: string): string {
    return join(this.dir, `${ImageIdSchema.parse(id)}.names`);
  }

  private metaPath(id: string): string {
    return join(this.dir, `${ImageIdSchema.parse(id)}.json`);
  }
}

const WRITE_BLOCK = 4 * 1024 * 1024;

/**
 * A session a previous version wrote for an upload without a layout (its staged bytes were the
 * image itself, hashed as they arrived). Retired: such a session is removed at start and its image
 * killed, as one whose files are gone (resumable-recovery.ts); the client starts a new upload.
 */
function isPlainSession(meta: unknown): boolean {
  return typeof meta === 'object' && meta !== null && !Array.isArray(meta) && !('layout' in meta);
}

async function writeAll(handle: FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await handle.write(buf, done, buf.length - done, position + done);
    done += bytesWritten;
  }
}

/** Size of a file after fsyncing it (what survives a power loss from here on), undefined when absent. */
async function syncedSize(path: string): Promise<number | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r+');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
  try {
    await handle.sync();
    return (await handle.stat()).size;
  } finally {
    await handle.close();
  }
}
