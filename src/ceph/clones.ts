// Clones inside the cluster, as Nova's direct snapshot makes them: a protected snapshot cloned into
// another pool, the clone flattened (its own copy of every object, so it no longer needs the
// parent), and the clean-up of such images and snapshots. Kept beside RbdClient rather than in it:
// each is a composition of a few rbd commands. Every name is checked (names.ts) before argv.
import { CephCommandError } from './errors';
import { imageSpec, type ImageRef } from './names';
import { RbdClient } from './client';
import { runCeph, type CallOptions, type CephConnection } from './transport';

/**
 * Nova clones a protected snapshot (clone format 1, which every client since firefly reads, and
 * which needs the protection Nova gives it anyway); stated, so the cluster's `auto` default does
 * not decide which rules the clean-up meets.
 */
export const CLONE_FORMAT = '1';

export class RbdClones {
  readonly rbd: RbdClient;

  constructor(readonly conn: CephConnection) {
    this.rbd = new RbdClient(conn);
  }

  /** `rbd clone parent@snap child`: the parent's snapshot must be protected. EEXIST when the child is there. */
  async clone(parent: ImageRef, snap: string, child: ImageRef, options: CallOptions = {}): Promise<void> {
    await runCeph(this.conn, 'rbd', ['clone', '--rbd-default-clone-format', CLONE_FORMAT, imageSpec(parent, snap), imageSpec(child)], options);
  }

  /**
   * Copies the parent's data into the clone (inside librbd), which then has no parent. A clone
   * already flat is left as it is. Its time grows with the image: `timeoutMs` replaces the
   * connection's per-command deadline for it.
   */
  async flatten(ref: ImageRef, options: CallOptions & { timeoutMs?: number } = {}): Promise<void> {
    const conn = options.timeoutMs === undefined ? this.conn : { ...this.conn, timeoutMs: options.timeoutMs };
    try {
      await runCeph(conn, 'rbd', ['flatten', '--no-progress', imageSpec(ref)], options);
    } catch (err) {
      // rbd answers EINVAL "image has no parent" for a flat image: what a retried flatten finds.
      if (err instanceof CephCommandError && err.errno === 'EINVAL' && (await this.rbd.info(ref, options)).parent === undefined) return;
      throw err;
    }
  }

  /**
   * Removes the snapshot whatever its protection; false when it was not there (or the image is
   * gone). EBUSY stays an error: a protected snapshot with clones is not ours to break.
   */
  async removeSnapshot(ref: ImageRef, snap: string, options: CallOptions = {}): Promise<boolean> {
    let snaps;
    try {
      snaps = await this.rbd.snapList(ref, options);
    } catch (err) {
      if (err instanceof CephCommandError && err.notFound) return false;
      throw err;
    }
    const found = snaps.find((s) => s.name === snap);
    if (found === undefined) return false;
    if (found.protected) await this.rbd.snapUnprotect(ref, snap, options);
    return this.rbd.snapRemove(ref, snap, options);
  }

  /** Removes the image and its snapshots (protected ones unprotected first); false when there was no image. */
  async removeImage(ref: ImageRef, options: CallOptions = {}): Promise<boolean> {
    const info = await this.rbd.find(ref, options);
    if (info === null) return false;
    for (const snap of await this.rbd.snapList(ref, options)) await this.removeSnapshot(ref, snap.name, options);
    return this.rbd.remove(ref, options);
  }
}
