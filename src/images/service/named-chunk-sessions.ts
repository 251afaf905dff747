// The chunk side of named uploads (protocol 2, client/chunk-wire.ts), per open session: the names
// the upload may put in its table without staging their bytes. A name gets there two ways: its
// bytes arrived and hash to it (receive), or the service told the uploader the image's project
// already holds it (known). Either way the chunk is pinned (no collection removes it) and the name
// is on disk (<id>.names) before the upload's table may use it, so a restarted service pins the
// same names again before its first collection and the commit finds every chunk it was promised.
//
// Received chunks are made durable together, not one by one: a chunk is written at once (on a
// shared backend its PUT started, several in flight) and answered, and the session's chunks
// received since the last time are fsynced (their PUTs answered), named and recorded in <id>.names
// in one go before the next append of names or the commit (settle). A write that fails drops the
// window's names: asked again, the service answers them unknown. Each fsync
// forces a journal commit of the whole filesystem, and a window of chunks pays a few instead of
// four per chunk. A service killed before a settle loses those chunks' names, and the uploader,
// asking again, sends them again.
import type { Readable } from 'node:stream';
import { ImageChecksumMismatch, ImageTooLarge, badRequest } from '../client/image-errors';
import { CHUNK_NAME_BYTES, NAMED_CHUNK_BYTES } from '../client/chunk-wire';
import { chunkHash, type ChunkStore } from '../store/chunk-store';
import type { ChunkBatch } from '../store/chunk-batch';
import type { ProjectChunks } from './project-chunks';
import type { StagedUploadFiles } from './staged-upload-files';

/** The chunks a session received since its last settle: written, not yet durable under their names. */
class Unsettled {
  readonly names = new Set<string>();
  readonly writes = new Set<Promise<void>>();

  constructor(readonly batch: ChunkBatch) {}

  /** Waits for the writes under way, then drops what was written (the session ended or the settle failed). */
  async abandon(): Promise<void> {
    await Promise.allSettled([...this.writes]);
    await this.batch.abandon();
    this.batch.release();
  }
}

export class NamedChunkSessions {
  /** per image: the hex names its upload may use */
  private readonly allowed = new Map<string, Set<string>>();
  /** per image: the chunks received since its last settle */
  private readonly unsettled = new Map<string, Unsettled>();
  /** per image: the chunk writes under way, by name, so a second PUT of a name waits for the first */
  private readonly writing = new Map<string, Map<string, Promise<void>>>();

  constructor(
    private readonly files: StagedUploadFiles,
    private readonly chunks: ChunkStore,
    private readonly projects: ProjectChunks,
    /** a batch that looks for a received chunk only when an installed index names it (ComposedImages.chunkBatch) */
    private readonly newBatch: () => ChunkBatch,
  ) {}

  start(id: string): void {
    if (!this.allowed.has(id)) this.allowed.set(id, new Set());
  }

  /** After a restart: the names the session was given, pinned again. */
  async restore(id: string): Promise<void> {
    this.start(id);
    const names = await this.files.readNames(id);
    for (let at = 0; at < names.length; at += CHUNK_NAME_BYTES) this.allow(id, names.subarray(at, at + CHUNK_NAME_BYTES).toString('hex'));
  }

  /** The session ended (committed, killed, discarded, deleted): its pins go, its unsettled chunks too; its file goes with the session's. */
  drop(id: string): void {
    for (const hex of this.allowed.get(id) ?? []) this.chunks.unpin(hex);
    this.allowed.delete(id);
    const unsettled = this.unsettled.get(id);
    this.unsettled.delete(id);
    this.writing.delete(id);
    // Nothing names these chunks: their temporary files go once their writes end.
    if (unsettled !== undefined) void unsettled.abandon().catch(() => undefined);
  }

  /** Whether the upload may use the name: received or told of, settled or not (commit settles first). */
  mayName(id: string, hex: string): boolean {
    return this.allowed.get(id)?.has(hex) === true || this.unsettled.get(id)?.names.has(hex) === true;
  }

  /**
   * The chunks received since the last settle made durable under their names and recorded as the
   * session's, together: called before an append of names and before the commit, so nothing names
   * a chunk that is not durable. When it fails, those names are not the session's: asked again,
   * the service answers them unknown, and the uploader sends them again.
   */
  async settle(id: string): Promise<void> {
    const unsettled = this.unsettled.get(id);
    if (unsettled === undefined) return;
    this.unsettled.delete(id);
    await Promise.allSettled([...unsettled.writes]);
    const names = [...unsettled.names];
    try {
      await unsettled.batch.sync();
      if (names.length > 0) await this.files.appendNames(id, Buffer.from(names.join(''), 'hex'));
    } catch (err) {
      await unsettled.abandon();
      throw err;
    }
    // Pinned for the session before the batch lets go of its own pins.
    if (this.allowed.has(id)) for (const hex of names) this.allow(id, hex);
    unsettled.batch.release();
  }

  /** Of `names`, those the upload may use unsent: already its own, or held by an active image of `owner` and stored. */
  async known(id: string, owner: string | null, names: readonly string[]): Promise<string[]> {
    const project = await this.projects.of(owner);
    const known: string[] = [];
    const fresh: string[] = [];
    for (const hex of new Set(names)) {
      if (this.mayName(id, hex)) {
        known.push(hex);
        continue;
      }
      if (!project.has(hex)) continue;
      // Pinned before the look: a collection either kept it or removed it before we looked.
      this.chunks.pin(hex);
      if ((await this.chunks.storedSize(Buffer.from(hex, 'hex'))) === undefined) {
        this.chunks.unpin(hex);
        continue;
      }
      fresh.push(hex);
    }
    try {
      if (fresh.length > 0) await this.files.appendNames(id, Buffer.from(fresh.join(''), 'hex'));
    } catch (err) {
      for (const hex of fresh) this.chunks.unpin(hex);
      throw err;
    }
    for (const hex of fresh) this.keepPinned(id, hex);
    return [...known, ...fresh];
  }

  /** Every session's received chunks settled (a service closing): what fails to settle is sent again on resume. */
  async settleAll(warn: (details: Record<string, unknown>, message: string) => void): Promise<void> {
    for (const id of [...this.unsettled.keys()]) {
      await this.settle(id).catch((err: unknown) => warn({ err, imageId: id }, 'received chunks could not be made durable at close; the uploader sends them again'));
    }
  }

  /**
   * One chunk's bytes under its name: at most a chunk's length, hashed, and refused (400, nothing
   * stored) unless they hash to the name; else written, and the name the upload's (durable at the
   * next settle).
   */
  async receive(id: string, hex: string, body: Readable): Promise<void> {
    const bytes = await readChunk(body);
    if (bytes.length === 0) throw badRequest('A chunk is at least one byte');
    const name = chunkHash(bytes);
    if (name.toString('hex') !== hex) {
      throw new ImageChecksumMismatch(`The ${bytes.length} bytes sent for chunk ${hex} hash to ${name.toString('hex')}: refused, nothing stored`);
    }
    const writing = this.writing.get(id) ?? new Map<string, Promise<void>>();
    const under = writing.get(hex);
    if (under !== undefined) return under;
    if (this.mayName(id, hex) || !this.allowed.has(id)) return;
    let unsettled = this.unsettled.get(id);
    if (unsettled === undefined) this.unsettled.set(id, (unsettled = new Unsettled(this.newBatch())));
    const batch = unsettled;
    const write = (async () => {
      await batch.batch.put(name, bytes);
      batch.names.add(hex);
    })();
    this.writing.set(id, writing.set(hex, write));
    batch.writes.add(write);
    try {
      await write;
    } catch (err) {
      this.dropWindow(id, batch);
      throw err;
    } finally {
      batch.writes.delete(write);
      writing.delete(hex);
    }
  }

  /**
   * A write of the window failed: its names are not the session's, and the next chunk starts a new
   * window. On a shared backend a window's chunk PUTs run in flight and the batch keeps its first
   * failure, failing every later put and the settle: kept, the window would refuse every chunk
   * the uploader sends again until a settle that cannot succeed.
   */
  private dropWindow(id: string, window: Unsettled): void {
    if (this.unsettled.get(id) !== window) return;
    this.unsettled.delete(id);
    void window.abandon().catch(() => undefined);
  }

  /** The name is the session's, pinned for it. */
  private allow(id: string, hex: string): void {
    this.chunks.pin(hex);
    this.keepPinned(id, hex);
  }

  /** Takes over a pin already held: one per name and session. */
  private keepPinned(id: string, hex: string): void {
    const names = this.allowed.get(id);
    if (names === undefined || names.has(hex)) this.chunks.unpin(hex);
    else names.add(hex);
  }
}

/** The body, refused past a chunk's length before more of it is held. */
async function readChunk(body: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  let length = 0;
  for await (const part of body) {
    const buf = Buffer.isBuffer(part) ? part : Buffer.from(part as Uint8Array);
    length += buf.length;
    if (length > NAMED_CHUNK_BYTES) throw new ImageTooLarge(`A chunk is at most ${NAMED_CHUNK_BYTES} bytes`);
    parts.push(buf);
  }
  return Buffer.concat(parts, length);
}
