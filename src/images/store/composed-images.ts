// The composing store: images kept as content-addressed chunks plus one index each, built at
// commit from a logical upload (a full one, or an incremental over a parent image), served as a
// whole image, and deleted without touching another image's chunks. Crash safety comes from order:
// chunks are durable and named before the index that names them is written, the index is written
// before the record turns active, and only chunks no index on disk names are ever collected.
//
// Garbage collection follows the deleted image, not the store: every installed index is counted
// (chunk-refs.ts), a delete takes its own index's slots off the counts and removes the chunks that
// fall to zero. The full mark and sweep (collect) is the repair pass: the start runs it, and
// rebuilds the counts there from the indexes a crash left.
//
// No lock spans tenants. A commit holds its own image's lock; what it needs of everyone else is
// pinned: the chunks it names (until its index is on disk) and its parent's index (so the parent's
// chunks, which the new table names without reading them, stay named). A collection keeps what is
// pinned; collections run one at a time among themselves, and never wait for a commit. The counts
// change one image at a time (a commit's count, a delete's uncount and reclaim, a repair), each
// holding its own image's lock first.
import { open, type FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { LOGICAL_DIGEST_ALGORITHM } from '../../qcow2';
import { ChunkDamaged, ChunkStore, type ChunkBatch, type CollectOutcome } from './chunk-store';
import { ChunkRefs } from './chunk-refs';
import { composeChunks, type Composed } from './compose';
import { ImageConflict, ImageVerificationFailed } from '../client/image-errors';
import { CHUNK_BYTES, ImageIndexes, referencedChunks, type IndexFile } from './image-index';
import { IndexWriter, type ServedFacts } from './index-writer';
import { checkLayoutBounds } from './layout-bounds';
import { servedPlan, stagesChunkNames, type LogicalLayout } from '../client/logical-layout';
import { composeNamed } from './compose-named';
import { servedStream } from './served-image';
import { verifyChunks, type VerifyPass } from './verify-job';
import type { SharedStoreBackend } from './store-backend';
import { RequestsInFlight } from '../../contract';

/** Chunks read back at once by a commit's verification. */
const VERIFY_READS_IN_FLIGHT = 8;

export interface ComposedCommit {
  /** the served image's bytes, from its plan: the commit reads none of them (md5 and sha512 come after activation) */
  size: number;
  /** `sha256-256k-blocks:<hex>` of the disk */
  logicalDigest: string;
  /** what the store grew by: chunks it did not hold before */
  newChunks: number;
  newChunkBytes: number;
}

export interface ComposeRequest {
  id: string;
  layout: LogicalLayout;
  stagedPath: string;
  /** re-read every chunk written and check it against its name before the index is written */
  verify: boolean;
  /** a named upload (protocol 2): the chunk names it may use */
  mayName?: (hex: string) => boolean;
}

export interface ComposedImagesOptions {
  chunksDir: string;
  indexesDir: string;
  /** where unreadable indexes go */
  quarantineDir: string;
  /** where damaged chunks go */
  chunkQuarantineDir: string;
  /** the image size cap: what a layout may describe, what an index may be */
  maxImageBytes: number;
  /** an index was quarantined: the image it served has no data any more */
  onQuarantine: (id: string, reason: string) => Promise<void>;
  /** a chunk of the image was found damaged while it was served: the download fails, the image is to be marked */
  onDamaged: (id: string, damage: ChunkDamaged) => Promise<void>;
  /**
   * Chunks and indexes in a backend several services share (store-backend.ts) instead of the data
   * dir's files: a delete then removes its index only, and chunks go by collect()'s sweep alone.
   */
  shared?: SharedStoreBackend;
}

export class ComposedImages {
  /** per image: its commit, or its index's removal */
  private readonly imageLocks = new Map<string, Promise<unknown>>();
  /** changes of the counts and collections, one after the other */
  private counting: Promise<unknown> = Promise.resolve();
  /** the chunks the installed indexes name, counted */
  private refs = new ChunkRefs();
  /** deleted images whose index an incremental's commit composes on: removed when it lets go */
  private readonly removalsDeferred = new Set<string>();
  /** parents of commits in flight, by id: how many */
  private readonly pinnedParents = new Map<string, number>();
  /** indexes a collection is removing right now */
  private readonly removingIndexes = new Set<string>();

  private constructor(
    readonly chunks: ChunkStore,
    private readonly indexes: ImageIndexes,
    private readonly maxImageBytes: number,
    private readonly onDamaged: ComposedImagesOptions['onDamaged'],
  ) {}

  static async open(options: ComposedImagesOptions): Promise<ComposedImages> {
    const { shared } = options;
    const indexes = await ImageIndexes.open({ dir: options.indexesDir, quarantineDir: options.quarantineDir, maxImageBytes: options.maxImageBytes, onQuarantine: options.onQuarantine, remote: shared?.indexes });
    const chunks = await ChunkStore.open(options.chunksDir, options.chunkQuarantineDir, shared);
    return new ComposedImages(chunks, indexes, options.maxImageBytes, options.onDamaged);
  }

  /** The parent an incremental names must be held as chunks, a disk of the same size: ImageConflict otherwise. */
  async requireParent(parentId: string, virtualSize: number): Promise<void> {
    await (await this.openParent(parentId, virtualSize)).close();
  }

  /** Composes and writes the image's index; the caller then marks the record active. */
  commit(request: ComposeRequest): Promise<ComposedCommit> {
    return this.exclusive(request.id, async () => {
      const { id, layout } = request;
      const parentId = layout.parent;
      const batch = this.chunkBatch();
      let parentPinned = false;
      let counted = false;
      try {
        // Again here: a session staged before these bounds existed must not size a table either.
        checkLayoutBounds(layout, this.maxImageBytes);
        if (parentId !== undefined) parentPinned = this.pinParent(parentId, id);
        const { written, writtenBytes, logicalDigest, served } = await this.compose(request, batch);
        // Counted while its chunks are pinned and its parent held: none of them can go meanwhile.
        await this.serially(() => this.count(id));
        counted = true;
        return { ...served, logicalDigest: `${LOGICAL_DIGEST_ALGORITHM}:${logicalDigest}`, newChunks: written.length, newChunkBytes: writtenBytes };
      } finally {
        const released = batch.release();
        // A failed commit wrote chunks no index counts: they go now, not at the next start.
        if (!counted) await this.serially(() => this.chunks.reclaim(released, (hex) => this.refs.has(hex))).catch(() => undefined);
        if (parentPinned && parentId !== undefined) this.unpinParent(parentId);
      }
    });
  }

  /** A batch of new chunks: one an installed index names is looked for before it is written, any other written unasked. */
  chunkBatch(): ChunkBatch {
    return this.chunks.batch((hex) => this.refs.has(hex));
  }

  /**
   * The image's download. A chunk found damaged on the way fails the stream (the client never gets
   * a whole, successful response) and is reported through onDamaged.
   */
  async openData(id: string): Promise<Readable | null> {
    const index = await this.indexes.open(id);
    if (index === undefined) return null;
    const stream = servedStream(index, this.chunks);
    stream.on('error', (err) => {
      if (err instanceof ChunkDamaged) void this.onDamaged(id, err).catch(() => undefined);
    });
    return stream;
  }

  /** Adds the names of every chunk the image's index holds (none without a readable index). */
  async chunkNames(id: string, into: Set<string>): Promise<void> {
    const index = await this.indexes.open(id);
    if (index === undefined) return;
    try {
      for await (const window of index.chunkTable()) referencedChunks(window, into);
    } finally {
      await index.close();
    }
  }

  async has(id: string): Promise<boolean> {
    return (await this.indexes.header(id)) !== undefined;
  }

  /** Served size of a composed image, or undefined when the image has no (readable) index. */
  async sizeOf(id: string): Promise<number | undefined> {
    return (await this.indexes.header(id))?.size;
  }

  /** One verify job's pass over the chunks the kept images name (verify-job.ts). */
  verify(pass: Omit<VerifyPass, 'indexes' | 'chunks'>): Promise<void> {
    return verifyChunks({ ...pass, indexes: this.indexes, chunks: this.chunks });
  }

  /**
   * Drops the image's index and reclaims the chunks no other index names, reading this index
   * only. The index is taken off the counts before it is removed (its slots are read from it); a
   * crash anywhere in between leaves files the next start's repair removes, never a chunk a live
   * index names. An index an incremental composes on is removed when that commit lets go of it.
   */
  removeIndex(id: string): Promise<CollectOutcome> {
    return this.exclusive(id, () => this.serially(() => this.release(id)));
  }

  /**
   * The repair pass, a full mark and sweep: removes the indexes of images that are not `keep`
   * (deleted, killed, uploading after a crash) and no commit composes on, rebuilds the counts from
   * the remaining indexes, then removes every chunk they and the commits in flight do not name.
   * Each index is read a window at a time; one that cannot be read is quarantined and the
   * collection goes on. Counts wait for it (a commit's count, a delete's reclaim); composes do not.
   */
  collect(keep: (id: string) => boolean): Promise<CollectOutcome & { removedIndexes: string[] }> {
    return this.serially(async () => {
      const removedIndexes: string[] = [];
      const fresh = new ChunkRefs();
      const outcome = await this.chunks.collect(async () => {
        for (const id of await this.indexes.ids()) {
          if (!keep(id) && !this.pinnedParents.has(id)) {
            await this.removeUnkept(id);
            removedIndexes.push(id);
            continue;
          }
          await this.countInto(fresh, id);
        }
        // From here on the sweep and every later reclaim ask the rebuilt counts.
        this.refs = fresh;
        return (hex) => fresh.has(hex);
      });
      return { ...outcome, removedIndexes };
    });
  }

  /** How many distinct chunks the installed indexes name (what the counts hold). */
  get countedChunks(): number {
    return this.refs.chunks;
  }

  /** The image's installed index, counted once. */
  private count(id: string): Promise<void> {
    return this.countInto(this.refs, id);
  }

  private async countInto(refs: ChunkRefs, id: string): Promise<void> {
    if (refs.isCounted(id)) return;
    const index = await this.indexes.open(id);
    if (index === undefined) return;
    try {
      for await (const window of index.chunkTable()) refs.add(window);
      refs.counted(id);
    } finally {
      await index.close();
    }
  }

  private async release(id: string): Promise<CollectOutcome> {
    if (this.pinnedParents.has(id)) {
      this.removalsDeferred.add(id);
      return { removedChunks: 0, removedBytes: 0, keptChunks: 0 };
    }
    this.removingIndexes.add(id);
    try {
      const freed = new Set<string>();
      if (this.refs.isCounted(id)) {
        const index = await this.indexes.open(id);
        try {
          // An index found unreadable now is quarantined: its counts stay (a leak the next repair ends).
          if (index !== undefined) for await (const window of index.chunkTable()) this.refs.remove(window, freed);
        } finally {
          await index?.close();
        }
        this.refs.uncounted(id);
      }
      await this.indexes.remove(id);
      return await this.chunks.reclaim(freed, (hex) => this.refs.has(hex));
    } finally {
      this.removingIndexes.delete(id);
    }
  }

  /** Changes of the counts, one after the other; a failure does not stop the next. */
  private serially<T>(work: () => Promise<T>): Promise<T> {
    const run = this.counting.then(work, work);
    this.counting = run.catch(() => undefined);
    return run;
  }

  /**
   * The chunks written and made durable, the index written a window at a time beside its name,
   * the served bytes hashed from it, then the index in place. Nothing of it stays on a failure.
   */
  private async compose(request: ComposeRequest, batch: ChunkBatch): Promise<Composed & { logicalDigest: string; served: ServedFacts }> {
    const { id, layout } = request;
    const header = { virtualSize: layout.map.virtualSize, chunkBytes: CHUNK_BYTES, format: layout.format, map: layout.map, parent: layout.parent ?? null };
    const temp = this.indexes.claimTemp(id);
    let parent: IndexFile | null = null;
    let staged: FileHandle | undefined;
    let writer: IndexWriter | undefined;
    try {
      parent = layout.parent === undefined ? null : await this.openParent(layout.parent, layout.map.virtualSize);
      writer = await IndexWriter.create(temp, header, parent);
      const file = (staged = await open(request.stagedPath, 'r'));
      const readStaged = async (offset: number, length: number): Promise<Buffer> => {
        const buf = Buffer.alloc(length);
        const { bytesRead } = await file.read(buf, 0, length, offset);
        if (bytesRead !== length) throw new ImageConflict(`staged data of image ${id} ends at ${offset + bytesRead}, the layout needs ${offset + length}`);
        return buf;
      };
      const { mayName } = request;
      const composed: Composed = stagesChunkNames(layout)
        ? await composeNamed({ id, layout, table: writer.chunks, readStaged, batch, mayName: mayName ?? (() => false) }).then(() => ({ written: [], writtenBytes: 0 }))
        : await composeChunks({ layout, incremental: parent !== null, table: writer.chunks, chunks: this.chunks, batch, readStaged });
      await batch.sync();
      if (request.verify) await this.verifyWritten(id, composed.written);
      const { logicalDigest } = await writer.finishTables();
      const served = { size: servedPlan(header).size };
      await writer.seal(served);
      await this.indexes.install(id, temp);
      return { ...composed, logicalDigest, served };
    } catch (err) {
      await batch.abandon();
      await writer?.discard();
      throw err;
    } finally {
      this.indexes.releaseTemp(id);
      await Promise.all([parent?.close(), staged?.close()]);
    }
  }

  /** Every chunk the commit wrote read back and checked against its name, a few at a time (each a GET on a shared backend). */
  private async verifyWritten(id: string, written: readonly Buffer[]): Promise<void> {
    await new RequestsInFlight(VERIFY_READS_IN_FLIGHT).each(written, async (hash) => {
      if (!(await this.chunks.verify(hash))) throw new ImageVerificationFailed(`Verification of image ${id} failed: chunk ${hash.toString('hex')} does not hold the bytes written; the image is killed`);
    });
  }

  private async openParent(parentId: string, virtualSize: number): Promise<IndexFile> {
    const parent = await this.indexes.open(parentId);
    if (parent === undefined) throw new ImageConflict(`Image ${parentId} is not held as chunks: an incremental upload cannot be composed on it`);
    if (parent.header.virtualSize !== virtualSize) {
      await parent.close();
      throw new ImageConflict(`Image ${parentId} is a disk of ${parent.header.virtualSize} bytes, the upload's is ${virtualSize}: an incremental needs the same disk`);
    }
    return parent;
  }

  /**
   * Holds an incremental's parent from the moment its commit is asked for, before the commit's
   * first await: a delete of the parent that comes after the commit request cannot take the index
   * it is about to compose on. Returns the release.
   */
  holdParent(parentId: string, id: string): () => void {
    this.pinParent(parentId, id);
    let held = true;
    return () => {
      if (held) this.unpinParent(parentId);
      held = false;
    };
  }

  /** Pinned before the parent's index is opened: a collection either keeps the index, or had removed it (conflict). */
  private pinParent(parentId: string, id: string): true {
    if (this.removingIndexes.has(parentId)) throw new ImageConflict(`Image ${parentId} is being deleted: the incremental upload of image ${id} cannot be composed on it`);
    this.pinnedParents.set(parentId, (this.pinnedParents.get(parentId) ?? 0) + 1);
    return true;
  }

  private unpinParent(parentId: string): void {
    const n = (this.pinnedParents.get(parentId) ?? 1) - 1;
    if (n > 0) {
      this.pinnedParents.set(parentId, n);
      return;
    }
    this.pinnedParents.delete(parentId);
    // A delete that waited for this commit: its failure is the next repair's to finish.
    if (this.removalsDeferred.delete(parentId)) void this.removeIndex(parentId).catch(() => undefined);
  }

  private async removeUnkept(id: string): Promise<void> {
    this.removingIndexes.add(id);
    try {
      await this.indexes.remove(id);
    } finally {
      this.removingIndexes.delete(id);
    }
  }

  private exclusive<T>(id: string, work: () => Promise<T>): Promise<T> {
    const previous = this.imageLocks.get(id) ?? Promise.resolve();
    const run = previous.then(work, work);
    const settled = run.catch(() => undefined);
    this.imageLocks.set(id, settled);
    void settled.then(() => {
      if (this.imageLocks.get(id) === settled) this.imageLocks.delete(id);
    });
    return run;
  }
}
