// The RBD disk's change tracking: an RBD snapshot of ours per point in time (src/ceph/names.ts
// spells the names: ours, and which run took each), `rbd diff --from-snap` between two of them
// (object-map and fast-diff make it a metadata read), retention and compensation that never touch
// a snapshot whose name is not ours (Nova's, Cinder's, an operator's, a direct snapshot's).
import { CephCommandError, CephNameError, coalesceExtents, ourSnapName, RbdClient, RbdDiffTooLarge, runOfOurSnap, type CephConnection, type ImageRef } from '../../ceph';
import type { BlockdevImageSpec } from '../nbd-export';
import type { StorageSnapshots } from './storage-snapshots';

function requireOurs(name: string): string {
  if (runOfOurSnap(name) === null) throw new CephNameError(`${JSON.stringify(name)} is not an RBD snapshot of ours`);
  return name;
}

export function rbdSnapshots(ref: ImageRef, conn: CephConnection, imageOf: (snap: string) => BlockdevImageSpec): StorageSnapshots {
  const rbd = new RbdClient(conn);
  return {
    noun: 'RBD snapshot',
    nameFor: ourSnapName,

    async exists(name) {
      return (await rbd.snapList(ref)).some((s) => s.name === name);
    },

    async create(name, timeoutMs) {
      try {
        await rbd.snapCreate(ref, requireOurs(name), { signal: AbortSignal.timeout(timeoutMs) });
      } catch (err) {
        // An earlier attempt's create landed though its answer was lost: the same point, kept.
        if (!(err instanceof CephCommandError && err.exists)) throw err;
      }
    },

    readOnlyImage: (name) => imageOf(name),

    async changedBetween(from, to, diskSize) {
      try {
        return { changed: coalesceExtents(await rbd.diff(ref, { fromSnap: from, at: to }), diskSize) };
      } catch (err) {
        if (err instanceof RbdDiffTooLarge) return { unusable: err.message };
        // The older snapshot went between the look and the diff.
        if (err instanceof CephCommandError && err.notFound) return { unusable: `RBD snapshot ${from} is gone: ${err.message}` };
        throw err;
      }
    },

    async retain(keep) {
      const removed: string[] = [];
      for (const snap of await rbd.snapList(ref)) {
        if (snap.name === keep || runOfOurSnap(snap.name) === null) continue;
        if (await rbd.snapRemove(ref, snap.name)) removed.push(snap.name);
      }
      return removed;
    },

    async discard(name) {
      return rbd.snapRemove(ref, requireOurs(name));
    },
  };
}
