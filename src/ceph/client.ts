// RBD operations the snapshot path needs, over the rbd/ceph CLIs: an image's facts, its snapshots,
// and the extents changed between two of them (`rbd diff --from-snap`, fast with object-map and
// fast-diff). Every name is checked before it reaches argv (names.ts); every answer is parsed (zod).
import { z } from 'zod';
import { DiffSchema, MAX_DIFF_EXTENTS, MAX_DIFF_STDOUT_BYTES, RbdDiffTooLarge } from './diff';
import { CephCommandError } from './errors';
import { checkPoolName, imageSpec, checkSnapName, type ImageRef } from './names';
import { Bytes, RbdBool } from './rbd-json';
import { callCeph } from './rpc';
import { runCeph, type CallOptions, type CephConnection } from './transport';


const ImageInfoSchema = z.object({
  name: z.string(),
  id: z.string(),
  size: Bytes,
  object_size: Bytes,
  snapshot_count: z.number().int().nonnegative(),
  format: z.number().int(),
  features: z.array(z.string()),
  parent: z.object({ pool: z.string(), image: z.string(), snapshot: z.string() }).passthrough().optional(),
});

const SnapListSchema = z.array(z.object({ id: z.number().int().nonnegative(), name: z.string(), size: Bytes, protected: RbdBool.optional() }));


const FsidSchema = z.object({ fsid: z.string().uuid() });

export interface RbdImageInfo {
  name: string;
  /** the image's id in its pool: a new image under the same name has another one */
  id: string;
  /** virtual size, bytes */
  size: number;
  objectSize: number;
  snapshotCount: number;
  features: string[];
  /** a clone's parent */
  parent?: { pool: string; image: string; snapshot: string };
}

export interface RbdSnapshot {
  id: number;
  name: string;
  size: number;
  protected: boolean;
}

/** An extent `rbd diff` reports: written data, or (`exists` false) a range discarded to zeros. */
export interface RbdExtent {
  offset: number;
  length: number;
  exists: boolean;
}

export class RbdClient {
  constructor(readonly conn: CephConnection) {}

  async info(ref: ImageRef, options: CallOptions = {}): Promise<RbdImageInfo> {
    const i = await callCeph(this.conn, 'rbd', ['info', imageSpec(ref)], ImageInfoSchema, options);
    return { name: i.name, id: i.id, size: i.size, objectSize: i.object_size, snapshotCount: i.snapshot_count, features: i.features, ...(i.parent ? { parent: { pool: i.parent.pool, image: i.parent.image, snapshot: i.parent.snapshot } } : {}) };
  }

  /** The image's facts, or null when there is no such image (or pool). */
  async find(ref: ImageRef, options: CallOptions = {}): Promise<RbdImageInfo | null> {
    try {
      return await this.info(ref, options);
    } catch (err) {
      if (err instanceof CephCommandError && err.notFound) return null;
      throw err;
    }
  }

  async snapCreate(ref: ImageRef, snap: string, options: CallOptions = {}): Promise<void> {
    await runCeph(this.conn, 'rbd', ['snap', 'create', '--no-progress', imageSpec(ref, snap)], options);
  }

  /** Removes the snapshot; false when it was not there (a retried removal). */
  async snapRemove(ref: ImageRef, snap: string, options: CallOptions = {}): Promise<boolean> {
    try {
      await runCeph(this.conn, 'rbd', ['snap', 'rm', '--no-progress', imageSpec(ref, snap)], options);
      return true;
    } catch (err) {
      if (err instanceof CephCommandError && err.notFound) return false;
      throw err;
    }
  }

  async snapList(ref: ImageRef, options: CallOptions = {}): Promise<RbdSnapshot[]> {
    const snaps = await callCeph(this.conn, 'rbd', ['snap', 'ls', imageSpec(ref)], SnapListSchema, options);
    return snaps.map((s) => ({ id: s.id, name: s.name, size: s.size, protected: s.protected ?? false }));
  }

  async snapProtect(ref: ImageRef, snap: string, options: CallOptions = {}): Promise<void> {
    await runCeph(this.conn, 'rbd', ['snap', 'protect', imageSpec(ref, snap)], options);
  }

  async snapUnprotect(ref: ImageRef, snap: string, options: CallOptions = {}): Promise<void> {
    await runCeph(this.conn, 'rbd', ['snap', 'unprotect', imageSpec(ref, snap)], options);
  }

  /**
   * The extents of `ref@at` (the image head when absent) that differ from `fromSnap` (from an empty
   * image when absent), ordered by offset. With fast-diff the granularity is the object. Bounded:
   * more than MAX_DIFF_EXTENTS extents is RbdDiffTooLarge (diff.ts).
   */
  async diff(ref: ImageRef, range: { fromSnap?: string; at?: string } = {}, options: CallOptions = {}): Promise<RbdExtent[]> {
    const args = ['diff'];
    if (range.fromSnap !== undefined) args.push('--from-snap', checkSnapName(range.fromSnap));
    args.push(imageSpec(ref, range.at));
    let extents;
    try {
      extents = await callCeph(this.conn, 'rbd', args, DiffSchema, { ...options, maxStdoutBytes: MAX_DIFF_STDOUT_BYTES });
    } catch (err) {
      if (err instanceof CephCommandError && err.stdoutExceeded) throw new RbdDiffTooLarge(`rbd diff of ${imageSpec(ref, range.at)} reports more than ${MAX_DIFF_EXTENTS} extents`);
      throw err;
    }
    return [...extents].sort((a, b) => a.offset - b.offset);
  }

  /** Removes an image that has no snapshots left; false when it was not there. */
  async remove(ref: ImageRef, options: CallOptions = {}): Promise<boolean> {
    try {
      await runCeph(this.conn, 'rbd', ['rm', '--no-progress', imageSpec(ref)], options);
      return true;
    } catch (err) {
      if (err instanceof CephCommandError && err.notFound) return false;
      throw err;
    }
  }

  /** The images of a pool. */
  async list(pool: string, options: CallOptions = {}): Promise<string[]> {
    return callCeph(this.conn, 'rbd', ['ls', checkPoolName(pool)], z.array(z.string()), options);
  }

  /** The cluster's fsid (what a Glance location `rbd://<fsid>/…` names). */
  async fsid(options: CallOptions = {}): Promise<string> {
    return (await callCeph(this.conn, 'ceph', ['fsid'], FsidSchema, options)).fsid;
  }
}
