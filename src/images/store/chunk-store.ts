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
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { errnoCode } from '../../contract';
import { join } from 'node:path';
import { fsyncDirectory } from '../../fs/atomic-file';
import { ChunkChecker, type ChunkCheck } from './chunk-checker';
import { ChunkBatch } from './chunk-batch';
import { remoteChunkChecks } from './remote-chunk-checks';
import type { RemoteChunks, SharedStoreBackend } from './store-backend';
import type { VerifiedChunks } from './verified-chunks';

export { ChunkBatch };

export const CHUNK_HASH_BYTES = 32;
const HEX_RE = /^[0-9a-f]{64}$/;

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

/** A shared backend's side of a chunk store (store-backend.ts's SharedStoreBackend). */
export type RemoteChunkStore = Pick<SharedStoreBackend, 'chunks' | 'graceMs' | 'putsInFlight'>;

/** What one removal did: the bytes it freed, or none, the chunk being gone or written again meanwhile. */
type Removal = { freed: number } | 'gone' | 'renewed';

/**
 * A listed chunk's removal, its time read again first: the listing may be minutes old by now, and
 * a writer of another service may have touched or re-PUT the chunk since, about to name it. The
 * delete is itself conditional on the time (removeIfOlder), so a touch between this HEAD and the
 * DELETE keeps the chunk too. One gone before the HEAD (another service's sweep took it) freed nothing
 * here; one gone between the HEAD and the DELETE counts as freed (S3 answers that delete as done).
 */
async function removeIfStillOld(chunks: RemoteChunks, hex: string, cutoff: number): Promise<Removal> {
  const now = await chunks.stat(hex);
  if (now === undefined) return 'gone';
  if (now.lastModified.getTime() >= cutoff) return 'renewed';
  return (await chunks.removeIfOlder(hex, new Date(cutoff))) ? { freed: now.size } : 'renewed';
}

export class ChunkStore {
  /** chunks a compose in flight names, by hex name: how many composes */
  private readonly pins = new Map<string, number>();
  /** chunks a collection is removing right now: a compose that wants one waits and writes it again */
  private readonly removing = new Map<string, Promise<Removal>>();
  /** chunks unpinned while a collection runs: it keeps them */
  private collecting: Set<string> | null = null;
  /** temporary files of puts in flight: not a crash's leftovers */
  readonly liveTemps = new Set<string>();
  /** chunk directories made (or found) by this process: a put makes its directory once, not once per chunk */
  private readonly madeDirs = new Set<string>();

  private constructor(
    private readonly dir: string,
    /** where damaged chunks are moved, as `<hex>.<ms>` */
    private readonly quarantineDir: string,
    /** a shared backend's chunks (store-backend.ts) instead of the files under `dir` */
    readonly remote: RemoteChunkStore | undefined,
  ) {}

  static async open(dir: string, quarantineDir: string, remote?: RemoteChunkStore): Promise<ChunkStore> {
    await mkdir(dir, { recursive: true });
    return new ChunkStore(dir, quarantineDir, remote);
  }

  /**
   * The chunks of one compose. `known` names chunks an installed index holds: on a shared backend
   * those are looked up before they are written (one may save its PUT); any other is written unasked.
   */
  batch(known: (hex: string) => boolean = () => false): ChunkBatch {
    return new ChunkBatch(this, known);
  }

  async makeDir(dir: string): Promise<void> {
    if (this.madeDirs.has(dir)) return;
    await mkdir(dir, { recursive: true });
    this.madeDirs.add(dir);
  }

  /** Resolves once a removal of the chunk under way (a collection's) is over: a write after it is not undone by it. */
  async removed(hex: string): Promise<void> {
    await this.removing.get(hex);
  }

  /** Whether a chunk of that name is stored (after any removal of it under way). */
  async exists(hash: Buffer): Promise<boolean> {
    const removal = this.removing.get(hash.toString('hex'));
    // A removal that found the chunk written again left it stored: asked as any other.
    if (removal !== undefined && (await removal) !== 'renewed') return false;
    if (this.remote !== undefined) return (await this.remoteSize(hash)) !== undefined;
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
    if (this.remote !== undefined) return this.remoteSize(hash);
    return (await stat(this.pathOf(hash)).catch(() => undefined))?.size;
  }

  /**
   * A shared backend's chunk size, asked by a compose about to name the chunk: one older than half
   * the grace period is touched, so another service's sweep, which spares what is younger than the
   * grace, keeps it until this compose's index is installed (PBS's atime rule).
   */
  private async remoteSize(hash: Buffer): Promise<number | undefined> {
    const remote = this.remote as NonNullable<ChunkStore['remote']>;
    const hex = hash.toString('hex');
    const found = await remote.chunks.stat(hex);
    if (found === undefined) return undefined;
    if (Date.now() - found.lastModified.getTime() > remote.graceMs / 2) await remote.chunks.touch(hex);
    return found.size;
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
    if (this.remote !== undefined) {
      const bytes = await this.remote.chunks.get(hash.toString('hex'));
      if (bytes === undefined) throw new ChunkDamaged(hash.toString('hex'), 'missing');
      return this.checked(hash, bytes);
    }
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
    if (this.remote !== undefined) return this.remote.chunks.quarantine(hex);
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
    if (this.remote !== undefined) {
      for await (const chunk of this.remote.chunks.list()) {
        chunks++;
        bytes += chunk.size;
      }
      return { chunks, bytes };
    }
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
      const markStart = Date.now();
      const named = await mark();
      if (this.remote !== undefined) {
        await this.sweepRemote(this.remote, markStart, (hex) => named(hex) || unpinned.has(hex), outcome);
        return outcome;
      }
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
    // On a shared backend this process's counts do not know other services' indexes: only the sweep removes.
    if (this.remote !== undefined) return { ...outcome, keptChunks: [...hexes].length };
    for (const hex of hexes) await this.removeUnless(hex, this.pathOf(Buffer.from(hex, 'hex')), () => named(hex), outcome);
    return outcome;
  }

  /**
   * The sweep of a shared backend: a chunk goes when no index named it at the mark, no compose here
   * pins it, and it was written or touched before the grace period preceding the mark's start (to
   * the whole second before), as listed and still when it is deleted (removeIfStillOld). One chunk
   * at a time, a HEAD and a DELETE each: a background pass, in no commit's way.
   */
  private async sweepRemote(remote: NonNullable<ChunkStore['remote']>, markStart: number, kept: (hex: string) => boolean, outcome: CollectOutcome): Promise<void> {
    // A whole second, as the object store compares times (a HEAD's Last-Modified, the DELETE's condition).
    const cutoff = Math.floor((markStart - remote.graceMs) / 1000) * 1000;
    for await (const chunk of remote.chunks.list()) {
      const { hex } = chunk;
      if (kept(hex) || this.pins.has(hex) || chunk.lastModified.getTime() >= cutoff) {
        outcome.keptChunks++;
        continue;
      }
      await this.removal(hex, removeIfStillOld(remote.chunks, hex, cutoff), outcome);
    }
  }

  /** A removal under way, claimed for its chunk (a compose asking meanwhile waits for it), then counted. */
  private async removal(hex: string, removal: Promise<Removal>, outcome: CollectOutcome): Promise<void> {
    this.removing.set(hex, removal);
    let done: Removal;
    try {
      done = await removal;
    } finally {
      this.removing.delete(hex);
    }
    if (done === 'gone') return;
    if (done === 'renewed') {
      outcome.keptChunks++;
      return;
    }
    outcome.removedChunks++;
    outcome.removedBytes += done.freed;
  }

  /**
   * A verify job's chunk checks: the local files in a worker thread (a file's mtime says when a job
   * found it whole), a shared backend's objects here (`stamps` says when).
   */
  startChecks(stamps?: VerifiedChunks): { check(hashes: Buffer[], verifiedSince: number): Promise<ChunkCheck[]>; stop(): Promise<void> } {
    if (this.remote !== undefined) return remoteChunkChecks(this.remote.chunks, stamps);
    const checker = ChunkChecker.start();
    return {
      check: (hashes, since) => checker.check(hashes.map((hash) => ({ path: this.pathOf(hash), name: hash.toString('hex') })), since),
      stop: () => checker.stop(),
    };
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
    await this.removal(hex, rm(path, { force: true }).then(() => ({ freed: size })), outcome);
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
