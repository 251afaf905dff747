// The composing store: images kept as content-addressed chunks plus one index each, built at
// commit from a logical upload (a full one, or an incremental over a parent image), served as a
// whole image, and deleted without touching another image's chunks. Crash safety comes from order:
// chunks are durable and named before the index that names them is written, the index is written
// before the record turns active, and only chunks no index on disk names are ever collected, under
// the same lock that commits hold while they write chunks and their index.
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { LOGICAL_DIGEST_ALGORITHM } from '../qcow2';
import { ChunkStore, type CollectOutcome } from './chunk-store';
import { composeChunks } from './compose';
import type { StreamHashes } from './hash-pool';
import { ImageConflict, ImageVerificationFailed } from './image-errors';
import { CHUNK_BYTES, ImageIndexError, ImageIndexes, indexLogicalDigest, referencedChunks, type ImageIndex } from './image-index';
import type { LogicalLayout } from './logical-layout';
import { servedDigests, servedStream } from './served-image';

export interface ComposedCommit {
  size: number;
  md5: string;
  sha512: string;
  /** `sha256-1m-blocks:<hex>` of the disk */
  logicalDigest: string;
  /** what the store grew by: chunks it did not hold before */
  newChunks: number;
  newChunkBytes: number;
}

export interface ComposeRequest {
  id: string;
  layout: LogicalLayout;
  stagedPath: string;
  hashes: StreamHashes;
  /** re-read every chunk written and check it against its name before the index is written */
  verify: boolean;
}

export class ComposedImages {
  private lock: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly chunks: ChunkStore,
    private readonly indexes: ImageIndexes,
  ) {}

  static async open(chunksDir: string, indexesDir: string): Promise<ComposedImages> {
    return new ComposedImages(await ChunkStore.open(chunksDir), await ImageIndexes.open(indexesDir));
  }

  /** The parent an incremental names, if it can be composed on: ImageConflict otherwise. */
  async requireParent(parentId: string, virtualSize: number): Promise<ImageIndex> {
    const parent = await this.indexes.read(parentId);
    if (parent === undefined) throw new ImageConflict(`Image ${parentId} is not held as chunks: an incremental upload cannot be composed on it`);
    if (parent.header.virtualSize !== virtualSize) {
      throw new ImageConflict(`Image ${parentId} is a disk of ${parent.header.virtualSize} bytes, the upload's is ${virtualSize}: an incremental needs the same disk`);
    }
    return parent;
  }

  /** Composes and writes the image's index; the caller then marks the record active. */
  commit(request: ComposeRequest): Promise<ComposedCommit> {
    return this.exclusive(async () => {
      const { id, layout } = request;
      const parent = layout.parent === undefined ? null : await this.requireParent(layout.parent, layout.map.virtualSize);
      const staged = await open(request.stagedPath, 'r');
      let composed;
      try {
        composed = await composeChunks({
          layout,
          parent,
          chunks: this.chunks,
          readStaged: async (offset, length) => {
            const buf = Buffer.alloc(length);
            const { bytesRead } = await staged.read(buf, 0, length, offset);
            if (bytesRead !== length) throw new ImageConflict(`staged data of image ${id} ends at ${offset + bytesRead}, the layout needs ${offset + length}`);
            return buf;
          },
        });
        await this.chunks.sync();
      } catch (err) {
        await this.chunks.abandon();
        request.hashes.close();
        throw err;
      } finally {
        await staged.close();
      }
      if (request.verify) {
        for (const hash of composed.written) {
          if (!(await this.chunks.verify(hash))) throw new ImageVerificationFailed(`Verification of image ${id} failed: chunk ${hash.toString('hex')} does not hold the bytes written; the image is killed`);
        }
      }
      const draft = { header: { virtualSize: layout.map.virtualSize, chunkBytes: CHUNK_BYTES, format: layout.format, map: layout.map, size: 0, md5: '0'.repeat(32), sha512: '0'.repeat(128), parent: layout.parent ?? null }, chunks: composed.chunks, blocks: composed.blocks };
      const served = await servedDigests(draft, this.chunks, request.hashes);
      const index: ImageIndex = { ...draft, header: { ...draft.header, ...served } };
      await this.indexes.write(id, index);
      return { ...served, logicalDigest: `${LOGICAL_DIGEST_ALGORITHM}:${indexLogicalDigest(index)}`, newChunks: composed.written.length, newChunkBytes: composed.writtenBytes };
    });
  }

  async openData(id: string): Promise<Readable | null> {
    const index = await this.indexes.read(id);
    return index === undefined ? null : servedStream(index, this.chunks);
  }

  async has(id: string): Promise<boolean> {
    return (await this.indexes.header(id)) !== undefined;
  }

  /** Served size of a composed image, or undefined when the image has no index. */
  async sizeOf(id: string): Promise<number | undefined> {
    try {
      return (await this.indexes.header(id))?.size;
    } catch (err) {
      // A torn index (a crash mid-write cannot make one, a damaged disk can) holds no image.
      if (err instanceof ImageIndexError) return undefined;
      throw err;
    }
  }

  /** Drops the image's index; its chunks go at the next collect() unless another index names them. */
  removeIndex(id: string): Promise<void> {
    return this.exclusive(() => this.indexes.remove(id));
  }

  /**
   * Removes the indexes of images that are not `keep` (deleted, killed, uploading after a crash),
   * then every chunk no remaining index names.
   */
  collect(keep: (id: string) => boolean): Promise<CollectOutcome & { removedIndexes: string[] }> {
    return this.exclusive(async () => {
      const removedIndexes: string[] = [];
      const referenced = new Set<string>();
      for (const id of await this.indexes.ids()) {
        // An index that cannot be read throws: collecting without it could take chunks it names.
        const index = keep(id) ? await this.indexes.read(id) : undefined;
        if (index === undefined) {
          await this.indexes.remove(id);
          removedIndexes.push(id);
          continue;
        }
        referencedChunks(index, referenced);
      }
      return { ...(await this.chunks.collect(referenced)), removedIndexes };
    });
  }

  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.lock.then(work, work);
    this.lock = run.catch(() => undefined);
    return run;
  }
}
