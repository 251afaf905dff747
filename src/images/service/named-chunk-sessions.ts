// The chunk side of named uploads (protocol 2, client/chunk-wire.ts), per open session: the names
// the upload may put in its table without staging their bytes. A name gets there two ways: its
// bytes arrived and hash to it (receive), or the service told the uploader the image's project
// already holds it (known). Either way the chunk is pinned (no collection removes it) and the name
// is on disk (<id>.names) before the answer, so a restarted service pins the same names again
// before its first collection and the commit finds every chunk it was promised.
import type { Readable } from 'node:stream';
import { ImageChecksumMismatch, ImageTooLarge, badRequest } from '../client/image-errors';
import { CHUNK_NAME_BYTES, NAMED_CHUNK_BYTES } from '../client/chunk-wire';
import { chunkHash, type ChunkStore } from '../store/chunk-store';
import type { ProjectChunks } from './project-chunks';
import type { StagedUploadFiles } from './staged-upload-files';

export class NamedChunkSessions {
  /** per image: the hex names its upload may use */
  private readonly allowed = new Map<string, Set<string>>();

  constructor(
    private readonly files: StagedUploadFiles,
    private readonly chunks: ChunkStore,
    private readonly projects: ProjectChunks,
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

  /** The session ended (committed, killed, discarded, deleted): its pins go; its file goes with the session's. */
  drop(id: string): void {
    for (const hex of this.allowed.get(id) ?? []) this.chunks.unpin(hex);
    this.allowed.delete(id);
  }

  mayName(id: string, hex: string): boolean {
    return this.allowed.get(id)?.has(hex) === true;
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

  /**
   * One chunk's bytes under its name: at most a chunk's length, hashed, and refused (400, nothing
   * stored) unless they hash to the name; else stored durably, and the name the upload's.
   */
  async receive(id: string, hex: string, body: Readable): Promise<void> {
    const bytes = await readChunk(body);
    if (bytes.length === 0) throw badRequest('A chunk is at least one byte');
    const name = chunkHash(bytes);
    if (name.toString('hex') !== hex) {
      throw new ImageChecksumMismatch(`The ${bytes.length} bytes sent for chunk ${hex} hash to ${name.toString('hex')}: refused, nothing stored`);
    }
    if (this.mayName(id, hex)) return;
    const batch = this.chunks.batch();
    try {
      await batch.put(name, bytes);
      await batch.sync();
      await this.files.appendNames(id, name);
      this.allow(id, hex);
    } catch (err) {
      await batch.abandon();
      throw err;
    } finally {
      batch.release();
    }
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
