// The chunks one compose writes (chunk-store.ts): pinned while it runs, written under temporary
// names and made durable under their own names together, before an index names them. On a shared
// backend each chunk is one PUT, several in flight while the compose goes on, all answered before
// sync() returns.
import { randomBytes } from 'node:crypto';
import { rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fsyncDirectory, fsyncPath } from '../../fs/atomic-file';
import { writeNewFile } from '../../fs/descriptor-io';
import type { RemoteChunks } from './store-backend';
import { RequestsInFlight } from '../../contract';

/** What a batch needs of its chunk store (chunk-store.ts's ChunkStore), named here so the two files do not import each other. */
export interface BatchStore {
  readonly remote: { chunks: Pick<RemoteChunks, 'put'>; putsInFlight: number } | undefined;
  readonly liveTemps: Set<string>;
  pin(hex: string): void;
  unpin(hex: string): void;
  exists(hash: Buffer): Promise<boolean>;
  storedSize(hash: Buffer): Promise<number | undefined>;
  /** resolves once a collection's removal of the chunk under way is over */
  removed(hex: string): Promise<void>;
  pathOf(hash: Buffer): string;
  dropTemp(temp: string): Promise<void>;
  syncRoot(): Promise<void>;
  /** makes a chunk directory, once per process */
  makeDir(dir: string): Promise<void>;
}

const SYNC_BATCH = 32;
/** A chunk's mtime until a verify job finds it whole. */
const NEVER_VERIFIED = new Date(0);

/**
 * The chunks one compose writes and uses. Every chunk it names (written or found stored) is pinned
 * until release(), after its index is on disk: a collection running meanwhile keeps it. put()
 * writes under a temporary name; sync() makes the batch's chunks durable under their names.
 */
export class ChunkBatch {
  private readonly pending = new Map<string, { temp: string; final: string }>();
  /** chunks this batch PUT, or is putting, to a shared backend */
  private readonly sent = new Set<string>();
  private readonly pinned = new Set<string>();
  private readonly puts: RequestsInFlight | undefined;

  constructor(
    private readonly store: BatchStore,
    /** chunks an installed index names: on a shared backend, looked up before they are written */
    private readonly known: (hex: string) => boolean,
  ) {
    this.puts = store.remote === undefined ? undefined : new RequestsInFlight(store.remote.putsInFlight);
  }

  /** The stored chunk's length (undefined when it is not stored), for a compose about to name it; pins it either way. */
  storedSize(hash: Buffer): Promise<number | undefined> {
    this.pin(hash);
    return this.store.storedSize(hash);
  }

  /**
   * Writes `bytes` for `hash` unless a chunk of that name is pending here, or stored and named by
   * an installed index; true when it wrote one. The chunk gets its name at sync(), once its bytes
   * are durable.
   */
  async put(hash: Buffer, bytes: Uint8Array): Promise<boolean> {
    if (this.store.remote !== undefined) return this.putRemote(hash, bytes, this.store.remote.chunks);
    const hex = this.pin(hash);
    if (this.pending.has(hex)) return false;
    // Only a chunk an installed index names is looked for, as on a shared backend: any other is
    // nearly never stored (a deleted image's, not yet reclaimed), and writing it again under its
    // name changes nothing but its mtime. Never before a removal of it under way is over.
    if (this.known(hex)) {
      if (await this.store.exists(hash)) return false;
    } else await this.store.removed(hex);
    const final = this.store.pathOf(hash);
    await this.store.makeDir(dirname(final));
    const temp = `${final}.${randomBytes(6).toString('hex')}.tmp`;
    this.pending.set(hex, { temp, final });
    this.store.liveTemps.add(temp);
    try {
      await writeNewFile(temp, bytes, { mode: 0o600, times: NEVER_VERIFIED });
    } catch (err) {
      this.pending.delete(hex);
      await this.store.dropTemp(temp);
      throw err;
    }
    return true;
  }

  /**
   * A shared backend's chunk, its PUT started (sync() waits for it). Only a chunk an installed index
   * names is looked up first: it is most likely stored, and the HEAD that finds it saves the PUT
   * (and touches an old one, chunk-store.ts). Any other is PUT unasked, since a HEAD would only
   * confirm what is nearly always so: a chunk is named by its bytes, so a PUT of one the bucket
   * already holds writes the same bytes, and the Last-Modified it renews only delays a sweep.
   */
  private async putRemote(hash: Buffer, bytes: Uint8Array, chunks: Pick<RemoteChunks, 'put'>): Promise<boolean> {
    const hex = this.pin(hash);
    if (this.sent.has(hex)) return false;
    if (this.known(hex) && (await this.store.exists(hash))) return false;
    this.sent.add(hex);
    await (this.puts as RequestsInFlight).start(async () => {
      // Not before a removal of it this process's collection has under way: it would undo the PUT.
      await this.store.removed(hex);
      await chunks.put(hex, bytes);
    });
    return true;
  }

  private pin(hash: Buffer): string {
    const hex = hash.toString('hex');
    if (!this.pinned.has(hex)) {
      this.pinned.add(hex);
      this.store.pin(hex);
    }
    return hex;
  }

  /**
   * Makes every put() since the last call durable under its name: the files fsynced side by side
   * (the journal takes them in a few commits, not one each), renamed, their directories fsynced;
   * on a shared backend, every PUT answered (an object is whole and durable once its PUT is), the
   * first failure thrown. Called before an index names the chunks.
   */
  async sync(): Promise<void> {
    if (this.puts !== undefined) return this.puts.drain();
    const pending = [...this.pending.values()];
    this.pending.clear();
    try {
      for (let i = 0; i < pending.length; i += SYNC_BATCH) {
        await Promise.all(pending.slice(i, i + SYNC_BATCH).map((p) => fsyncPath(p.temp)));
      }
      // Side by side, each ended before a failure drops the temporary files.
      const renamed = await Promise.allSettled(
        pending.map(async (p) => {
          await rename(p.temp, p.final);
          this.store.liveTemps.delete(p.temp);
        }),
      );
      const failed = renamed.find((r) => r.status === 'rejected');
      if (failed !== undefined) throw failed.reason;
    } catch (err) {
      await Promise.all(pending.map((p) => this.store.dropTemp(p.temp)));
      throw err;
    }
    const dirs = new Set(pending.map((p) => dirname(p.final)));
    await Promise.all([...dirs].map((d) => fsyncDirectory(d)));
    if (dirs.size > 0) await this.store.syncRoot();
  }

  /**
   * Drops the chunks put since the last sync() (a compose that failed); a shared backend's PUTs in
   * flight are waited for (their chunks are left to the sweep, as a failed commit's are).
   */
  async abandon(): Promise<void> {
    await this.puts?.settle();
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
