// Content-addressed chunks of guest data under <dataDir>/chunks/<2 hex>/<64 hex>: each file is named
// by the SHA-256 of its bytes, so a chunk is stored once however many images hold it, and a file
// whose bytes do not hash to its name is known to be damaged. A chunk is written under a temporary
// name, fsynced and renamed: a file with a chunk's name is always whole. Which chunks are still
// needed is the indexes' business (image-index.ts); collect() removes the others.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fsyncDirectory, fsyncPath } from '../fs/atomic-file';

export const CHUNK_HASH_BYTES = 32;
const HEX_RE = /^[0-9a-f]{64}$/;
const SYNC_BATCH = 32;

export function chunkHash(bytes: Uint8Array): Buffer {
  return createHash('sha256').update(bytes).digest();
}

export interface CollectOutcome {
  removedChunks: number;
  removedBytes: number;
  keptChunks: number;
}

export class ChunkStore {
  /** chunks put since the last sync(), by hex name: written, not yet durable nor named */
  private readonly pending = new Map<string, { temp: string; final: string }>();

  private constructor(private readonly dir: string) {}

  static async open(dir: string): Promise<ChunkStore> {
    await mkdir(dir, { recursive: true });
    return new ChunkStore(dir);
  }

  async has(hash: Buffer): Promise<boolean> {
    if (this.pending.has(hash.toString('hex'))) return true;
    try {
      await stat(this.pathOf(hash));
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Writes `bytes` for `hash` unless a chunk of that name is stored or pending; true when it wrote
   * one. The chunk gets its name at sync(), once its bytes are durable.
   */
  async put(hash: Buffer, bytes: Uint8Array): Promise<boolean> {
    if (await this.has(hash)) return false;
    const final = this.pathOf(hash);
    await mkdir(dirname(final), { recursive: true });
    const temp = `${final}.${randomBytes(6).toString('hex')}.tmp`;
    this.pending.set(hash.toString('hex'), { temp, final });
    try {
      await writeFile(temp, bytes, { flag: 'wx', mode: 0o600 });
    } catch (err) {
      this.pending.delete(hash.toString('hex'));
      await rm(temp, { force: true });
      throw err;
    }
    return true;
  }

  /**
   * Makes every put() since the last call durable under its name: the files fsynced side by side
   * (the journal takes them in a few commits, not one each), renamed, their directories fsynced.
   * Called before an index names the chunks.
   */
  async sync(): Promise<void> {
    const pending = [...this.pending.values()];
    this.pending.clear();
    try {
      for (let i = 0; i < pending.length; i += SYNC_BATCH) {
        await Promise.all(pending.slice(i, i + SYNC_BATCH).map((p) => fsyncPath(p.temp)));
      }
      for (const p of pending) await rename(p.temp, p.final);
    } catch (err) {
      await Promise.all(pending.map((p) => rm(p.temp, { force: true })));
      throw err;
    }
    const dirs = new Set(pending.map((p) => dirname(p.final)));
    await Promise.all([...dirs].map((d) => fsyncDirectory(d)));
    if (dirs.size > 0) await fsyncDirectory(this.dir);
  }

  /** Drops the chunks put since the last sync() (a compose that failed). */
  async abandon(): Promise<void> {
    const pending = [...this.pending.values()];
    this.pending.clear();
    await Promise.all(pending.map((p) => rm(p.temp, { force: true })));
  }

  read(hash: Buffer): Promise<Buffer> {
    return readFile(this.pathOf(hash));
  }

  /** Re-reads a chunk and checks its bytes still hash to its name. */
  async verify(hash: Buffer): Promise<boolean> {
    try {
      return chunkHash(await this.read(hash)).equals(hash);
    } catch {
      return false;
    }
  }

  /** Bytes the chunk files take (their lengths). */
  async storedBytes(): Promise<{ chunks: number; bytes: number }> {
    let chunks = 0;
    let bytes = 0;
    for (const file of await this.files()) {
      chunks++;
      bytes += (await stat(file.path)).size;
    }
    return { chunks, bytes };
  }

  /**
   * Removes every chunk `referenced` does not hold, and temporary files a crash left. The caller
   * must hold off writers of indexes (a chunk put for an index not yet written looks unreferenced).
   */
  async collect(referenced: ReadonlySet<string>): Promise<CollectOutcome> {
    const outcome: CollectOutcome = { removedChunks: 0, removedBytes: 0, keptChunks: 0 };
    for (const file of await this.files(true)) {
      if (file.hash !== null && referenced.has(file.hash)) {
        outcome.keptChunks++;
        continue;
      }
      const size = (await stat(file.path).catch(() => null))?.size ?? 0;
      await rm(file.path, { force: true });
      if (file.hash !== null) {
        outcome.removedChunks++;
        outcome.removedBytes += size;
      }
    }
    return outcome;
  }

  private async files(withTemps = false): Promise<{ path: string; hash: string | null }[]> {
    const out: { path: string; hash: string | null }[] = [];
    for (const sub of await readdir(this.dir)) {
      if (!/^[0-9a-f]{2}$/.test(sub)) continue;
      for (const name of await readdir(join(this.dir, sub))) {
        const hash = HEX_RE.test(name) && name.startsWith(sub) ? name : null;
        if (hash !== null || withTemps) out.push({ path: join(this.dir, sub, name), hash });
      }
    }
    return out;
  }

  private pathOf(hash: Buffer): string {
    if (hash.length !== CHUNK_HASH_BYTES) throw new Error(`a chunk hash is ${CHUNK_HASH_BYTES} bytes, got ${hash.length}`);
    const hex = hash.toString('hex');
    return join(this.dir, hex.slice(0, 2), hex);
  }
}
