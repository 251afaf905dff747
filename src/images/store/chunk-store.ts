// Content-addressed chunks of guest data under <dataDir>/chunks/<2 hex>/<64 hex>: each file is named
// by the SHA-256 of its bytes, so a chunk is stored once however many images hold it, and a file
// whose bytes do not hash to its name is known to be damaged. A chunk is written under a temporary
// name, fsynced and renamed: a file with a chunk's name is always whole. Which chunks are still
// needed is the indexes' business (image-index.ts, counted by chunk-refs.ts): reclaim() removes the
// chunks a delete freed, collect() sweeps every chunk no index names; neither removes one a compose
// in flight has pinned, so composes need no lock in common with them.
//
// Every read is checked against the chunk's name before its bytes are used: bit rot is never served,
// composed into a new image, nor taken for a chunk the store holds. A chunk found damaged is moved
// to the quarantine (kept for an operator), so the next upload that carries its bytes writes it
// again and the images that name it become whole again.
//
// A chunk file's mtime is when a verify job last found it whole (verify-job.ts, chunk-checker.ts); a new chunk is
// written with the epoch, never verified, so the next job reads it whatever its re-verify age.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { errnoCode } from '../../contract';
import { dirname, join } from 'node:path';
import { fsyncDirectory, fsyncPath } from '../../fs/atomic-file';

export const CHUNK_HASH_BYTES = 32;
const HEX_RE = /^[0-9a-f]{64}$/;
const SYNC_BATCH = 32;
/** A chunk's mtime until a verify job finds it whole. */
const NEVER_VERIFIED = new Date(0);

/** A chunk whose bytes no longer hash to its name, or that is gone while an index names it. */
export class ChunkDamaged extends Error {
  override readonly name = 'ChunkDamaged';
  constructor(
    /** the chunk's name (hex SHA-256) */
    readonly chunk: string,
    readonly reason: 'mismatch' | 'missing',
  ) {
    super(reason === 'mismatch' ? `chunk ${chunk} does not hash to its name` : `chunk ${chunk} is missing from the store`);
  }
}

function missingOr(hash: Buffer, err: unknown): never {
  if (errnoCode(err) === 'ENOENT') throw new ChunkDamaged(hash.toString('hex'), 'missing');
  throw err;
}

export function chunkHash(bytes: Uint8Array): Buffer {
  return createHash('sha256').update(bytes).digest();
}

export interface CollectOutcome {
  removedChunks: number;
  removedBytes: number;
  keptChunks: number;
}

/**
 * The chunks one compose writes and uses. Every chunk it names (written or found stored) is pinned
 * until release(), after its index is on disk: a collection running meanwhile keeps it. put()
 * writes under a temporary name; sync() makes the batch's chunks durable under their names.
 */
export class ChunkBatch {
  private readonly pending = new Map<string, { temp: string; final: string }>();
  private readonly pinned = new Set<string>();

  constructor(private readonly store: ChunkStore) {}

  /** Whether the chunk is stored (or written by this batch); pins it either way. */
  async has(hash: Buffer): Promise<boolean> {
    const hex = hash.toString('hex');
    if (!this.pinned.has(hex)) {
      this.pinned.add(hex);
      this.store.pin(hex);
    }
    return this.pending.has(hex) || (await this.store.exists(hash));
  }

  /**
   * Writes `bytes` for `hash` unless a chunk of that name is stored or pending here; true when it
   * wrote one. The chunk gets its name at sync(), once its bytes are durable.
   */
  async put(hash: Buffer, bytes: Uint8Array): Promise<boolean> {
    if (await this.has(hash)) return false;
    const final = this.store.pathOf(hash);
    await mkdir(dirname(final), { recursive: true });
    const temp = `${final}.${randomBytes(6).toString('hex')}.tmp`;
    this.pending.set(hash.toString('hex'), { temp, final });
    this.store.liveTemps.add(temp);
    try {
      await writeFile(temp, bytes, { flag: 'wx', mode: 0o600 });
      await utimes(temp, NEVER_VERIFIED, NEVER_VERIFIED);
    } catch (err) {
      this.pending.delete(hash.toString('hex'));
      await this.store.dropTemp(temp);
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
      for (const p of pending) {
        await rename(p.temp, p.final);
        this.store.liveTemps.delete(p.temp);
      }
    } catch (err) {
      await Promise.all(pending.map((p) => this.store.dropTemp(p.temp)));
      throw err;
    }
    const dirs = new Set(pending.map((p) => dirname(p.final)));
    await Promise.all([...dirs].map((d) => fsyncDirectory(d)));
    if (dirs.size > 0) await this.store.syncRoot();
  }

  /** Drops the chunks put since the last sync() (a compose that failed). */
  async abandon(): Promise<void> {
    const pending = [...this.pending.values()];
    this.pending.clear();
    await Promise.all(pending.map((p) => this.store.dropTemp(p.temp)));
  }

  /**
   * The batch's chunks are named by an index on disk now (or not needed): unpinned. Returns them,
   * so the caller can reclaim those no index counts (a compose that failed wrote them for nothing).
   */
  release(): string[] {
    const released = [...this.pinned];
    for (const hex of released) this.store.unpin(hex);
    this.pinned.clear();
    return released;
  }
}

export class ChunkStore {
  /** chunks a compose in flight names, by hex name: how many composes */
  private readonly pins = new Map<string, number>();
  /** chunks a collection is removing right now: a compose that wants one waits and writes it again */
  private readonly removing = new Map<string, Promise<void>>();
  /** chunks unpinned while a collection runs: it keeps them */
  private collecting: Set<string> | null = null;
  /** temporary files of puts in flight: not a crash's leftovers */
  readonly liveTemps = new Set<string>();

  private constructor(
    private readonly dir: string,
    /** where damaged chunks are moved, as `<hex>.<ms>` */
    private readonly quarantineDir: string,
  ) {}

  static async open(dir: string, quarantineDir: string): Promise<ChunkStore> {
    await mkdir(dir, { recursive: true });
    return new ChunkStore(dir, quarantineDir);
  }

  batch(): ChunkBatch {
    return new ChunkBatch(this);
  }

  /** Whether a chunk of that name is stored (after any removal of it under way). */
  async exists(hash: Buffer): Promise<boolean> {
    const removal = this.removing.get(hash.toString('hex'));
    if (removal !== undefined) {
      await removal;
      return false;
    }
    try {
      await stat(this.pathOf(hash));
      return true;
    } catch {
      return false;
    }
  }

  /** The stored chunk's length, undefined when there is none (after any removal of it under way). */
  async storedSize(hash: Buffer): Promise<number | undefined> {
    const removal = this.removing.get(hash.toString('hex'));
    if (removal !== undefined) await removal;
    return (await stat(this.pathOf(hash)).catch(() => undefined))?.size;
  }

  pin(hex: string): void {
    this.pins.set(hex, (this.pins.get(hex) ?? 0) + 1);
  }

  unpin(hex: string): void {
    const n = (this.pins.get(hex) ?? 1) - 1;
    if (n > 0) this.pins.set(hex, n);
    else this.pins.delete(hex);
    // Its index was written after the running collection listed the indexes: keep it this time.
    this.collecting?.add(hex);
  }

  async dropTemp(temp: string): Promise<void> {
    await rm(temp, { force: true });
    this.liveTemps.delete(temp);
  }

  syncRoot(): Promise<void> {
    return fsyncDirectory(this.dir);
  }

  /** The chunk's bytes, checked against its name: ChunkDamaged (and the chunk quarantined) when they differ or it is gone. */
  async read(hash: Buffer): Promise<Buffer> {
    return this.checked(hash, await readFile(this.pathOf(hash)).catch((err: unknown) => missingOr(hash, err)));
  }

  /** The bytes read for a chunk, when they hash to its name; else the chunk is quarantined and ChunkDamaged thrown. */
  private async checked(hash: Buffer, bytes: Buffer): Promise<Buffer> {
    if (chunkHash(bytes).equals(hash)) return bytes;
    await this.quarantine(hash);
    throw new ChunkDamaged(hash.toString('hex'), 'mismatch');
  }

  /** Re-reads a chunk and checks its bytes still hash to its name. */
  async verify(hash: Buffer): Promise<boolean> {
    try {
      await this.read(hash);
      return true;
    } catch {
      return false;
    }
  }

  /** Moves a damaged chunk out of the store's names, to be looked at; a rename, so its bytes stay as found. */
  async quarantine(hash: Buffer): Promise<void> {
    const hex = hash.toString('hex');
    await mkdir(this.quarantineDir, { recursive: true });
    await rename(this.pathOf(hash), join(this.quarantineDir, `${hex}.${Date.now()}`)).catch((err: unknown) => {
      // Another reader moved it first.
      if (errnoCode(err) !== 'ENOENT') throw err;
    });
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
   * Mark and sweep, the repair pass: `mark` reads the indexes on disk and answers which chunks they
   * name; then every chunk neither they nor a compose in flight names is removed, with the
   * temporary files a crash left. A chunk unpinned from the start of the mark on (its index may
   * have been written after the mark listed the indexes) is kept; a compose that pins a chunk while
   * it is being removed writes it again. One collection at a time (the caller's to ensure).
   */
  async collect(mark: () => Promise<(hex: string) => boolean>): Promise<CollectOutcome> {
    const outcome: CollectOutcome = { removedChunks: 0, removedBytes: 0, keptChunks: 0 };
    const unpinned = new Set<string>();
    this.collecting = unpinned;
    try {
      const named = await mark();
      for (const file of await this.files(true)) {
        if (file.hash === null) {
          if (!this.liveTemps.has(file.path)) await rm(file.path, { force: true });
          continue;
        }
        const hex = file.hash;
        await this.removeUnless(hex, file.path, () => named(hex) || unpinned.has(hex), outcome);
      }
    } finally {
      this.collecting = null;
    }
    return outcome;
  }

  /**
   * Removes the named chunks unless `named` says an index holds them or a compose in flight pins
   * them: what one delete freed, found without listing the store.
   */
  async reclaim(hexes: Iterable<string>, named: (hex: string) => boolean): Promise<CollectOutcome> {
    const outcome: CollectOutcome = { removedChunks: 0, removedBytes: 0, keptChunks: 0 };
    for (const hex of hexes) await this.removeUnless(hex, this.pathOf(Buffer.from(hex, 'hex')), () => named(hex), outcome);
    return outcome;
  }

  private async removeUnless(hex: string, path: string, kept: () => boolean, outcome: CollectOutcome): Promise<void> {
    const keeps = () => kept() || this.pins.has(hex);
    if (keeps()) {
      outcome.keptChunks++;
      return;
    }
    const size = (await stat(path).catch(() => null))?.size;
    // Asked again after the await: a compose may have pinned it meanwhile.
    if (keeps()) {
      outcome.keptChunks++;
      return;
    }
    if (size === undefined) return;
    // Claimed before the first await of the removal: a compose asking now waits for it.
    const removal = rm(path, { force: true });
    this.removing.set(hex, removal);
    try {
      await removal;
    } finally {
      this.removing.delete(hex);
    }
    outcome.removedChunks++;
    outcome.removedBytes += size;
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

  pathOf(hash: Buffer): string {
    if (hash.length !== CHUNK_HASH_BYTES) throw new Error(`a chunk hash is ${CHUNK_HASH_BYTES} bytes, got ${hash.length}`);
    const hex = hash.toString('hex');
    return join(this.dir, hex.slice(0, 2), hex);
  }
}
