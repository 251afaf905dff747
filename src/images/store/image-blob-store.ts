// Local-filesystem image data backend. Uploads land in <dataDir>/staging under a unique name and
// are renamed into <dataDir>/files/<id> only after every byte is fsynced, so a file under files/
// is always complete; anything left in staging after a crash is garbage by definition. Resumable
// uploads keep their own files (staged-upload-files.ts) and are composed into the chunk store.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { fsyncDirectory } from '../../fs/atomic-file';
import { fileDigests } from './file-digests';
import { ImageTooLarge, ImageUploadFailed, storageFailure } from '../client/image-errors';
import { ImageIdSchema } from '../client/image-record';
import { errnoCode } from '../../contract';

export interface ReceivedImageData {
  size: number;
  md5: string;
  sha512: string;
}

export class LocalImageBlobStore {
  private constructor(
    private readonly filesDir: string,
    private readonly stagingDir: string,
  ) {}

  static async open(dataDir: string): Promise<LocalImageBlobStore> {
    const store = new LocalImageBlobStore(join(dataDir, 'files'), join(dataDir, 'staging'));
    await mkdir(store.filesDir, { recursive: true });
    await mkdir(store.stagingDir, { recursive: true });
    return store;
  }

  /** Deletes every staged (hence partial) upload; returns the removed names. */
  async clearStaging(): Promise<string[]> {
    const entries = await readdir(this.stagingDir);
    await Promise.all(entries.map((e) => rm(join(this.stagingDir, e), { force: true, recursive: true })));
    return entries;
  }

  /**
   * Streams `source` to staging while computing size, md5 and sha512, then publishes it as the
   * image's data. Reads one chunk at a time and awaits each write, so memory stays constant.
   */
  async receive(id: string, source: Readable, maxBytes: number): Promise<ReceivedImageData> {
    const finalPath = this.pathFor(id);
    const staged = join(this.stagingDir, `${ImageIdSchema.parse(id)}.${randomBytes(6).toString('hex')}.part`);
    const md5 = createHash('md5');
    const sha512 = createHash('sha512');
    let size = 0;
    const handle = await open(staged, 'wx', 0o600);
    let published = false;
    try {
      // destroyOnReturn false: on a size-limit stop the caller still owns the source (the HTTP
      // request) and decides whether to answer before the connection is closed.
      for await (const chunk of source.iterator({ destroyOnReturn: false })) {
        const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
        size += buf.length;
        if (size > maxBytes) throw new ImageTooLarge(`Image exceeds the storage quota of ${maxBytes} bytes`);
        md5.update(buf);
        sha512.update(buf);
        await handle.write(buf);
      }
      await handle.sync();
      await handle.close();
      await rename(staged, finalPath);
      published = true;
      await fsyncDirectory(this.filesDir);
      return { size, md5: md5.digest('hex'), sha512: sha512.digest('hex') };
    } catch (err) {
      await handle.close().catch(() => undefined);
      await rm(published ? finalPath : staged, { force: true });
      throw classifyReceiveError(err);
    }
  }

  /** Re-reads the stored data and hashes it (off the event loop): what verify-after-commit compares with the received digests. */
  digest(id: string): Promise<ReceivedImageData> {
    return fileDigests(this.pathFor(id));
  }

  async remove(id: string): Promise<void> {
    await rm(this.pathFor(id), { force: true });
  }

  /** Size of the stored data, or undefined when there is none. */
  async sizeOf(id: string): Promise<number | undefined> {
    try {
      return (await stat(this.pathFor(id))).size;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  openRead(id: string): Readable {
    return createReadStream(this.pathFor(id));
  }

  private pathFor(id: string): string {
    // Ids reach the filesystem only after UUID validation: no traversal, no odd characters.
    return join(this.filesDir, ImageIdSchema.parse(id));
  }
}

function classifyReceiveError(err: unknown): Error {
  return storageFailure(err, (detail) => new ImageUploadFailed(`Image data upload did not complete: ${detail}`, 400, { cause: err }));
}
