// Nova's direct snapshot (imagebackend.py Rbd.direct_snapshot) for an RBD disk whose image backend
// is a Glance storing images in RBD in the same cluster: the disk's snapshot is cloned into Glance's
// pool, flattened (a copy inside the cluster, by librbd), its source snapshot removed, `snap`
// created and protected on the copy, and Glance is handed `rbd://<fsid>/<pool>/<image id>/snap`. No
// byte of the disk goes through the snapshot's stream or the image service's HTTP.
//
// Names are the run's own: the source snapshot is `direct-<image id>`, the copy `<pool>/<image id>`
// (a queued image has no data of Glance's under its id). Each attempt looks before it creates: it
// removes what an earlier attempt of the same image left, then makes everything again. A refusal a
// repeat cannot change (Glance refuses the location, the pool is missing, the caps do not reach
// it) ends the attempt with nothing of it left and the reason, and the caller streams, as Nova
// falls back to its generic path; a transient failure is cleaned up too and thrown, to be retried.
import type { DiskSource } from './disk-source/disk-source';
import type { ImageRef, RbdClient, RbdClones } from '../ceph';
import { errorMessage, type DirectSnapshotOutcome } from '../contract';
import { ImageNotFound, type Image, type ImageClient, type ImageLocations } from '../images/client';
import type { QuiesceOutcome } from './quiesce';

/** Glance's rbd driver names the snapshot every image of its own has `snap`; Nova's copies do too. */
export const GLANCE_SNAPSHOT = 'snap';
/** Glance's lock on an image whose location task is still running (glance/api/v2/images.py). */
const IMPORT_LOCK_PROPERTY = 'os_glance_import_task';

/** Why the direct snapshot does not apply to this disk on this host, or null when it does (then the attempt may still fall back). */
export function directSnapshotRefusal(diskKind: DiskSource['kind'] | null, settings: { glancePool?: string }): string | null {
  if (diskKind !== 'rbd') return 'the root disk is not an RBD image';
  if (settings.glancePool === undefined) return "SNAP_GLANCE_RBD_POOL is unset: the host does not know of a Glance on this cluster's RBD";
  return null;
}

export interface DirectSnapshotNames {
  disk: ImageRef;
  /** on the disk, for the time of the clone */
  sourceSnap: string;
  /** the image's data in Glance's pool */
  copy: ImageRef;
}

export function directSnapshotNames(disk: ImageRef, glancePool: string, imageId: string): DirectSnapshotNames {
  return { disk, sourceSnap: `direct-${imageId}`, copy: { pool: glancePool, image: imageId } };
}

/** The location Glance's rbd store reads: `rbd://<fsid>/<pool>/<image>/<snapshot>`. */
export function glanceRbdLocation(fsid: string, copy: ImageRef): string {
  return `rbd://${fsid}/${copy.pool}/${copy.image}/${GLANCE_SNAPSHOT}`;
}

/** Glance took the location and then dropped it (its task reverted the image to queued). */
export class LocationRefused extends Error {
  override readonly name = 'LocationRefused';
  readonly retryable = false;
}

/** Glance still holds the location task past the wait: the copy must stay until it decides. */
export class LocationPending extends Error {
  override readonly name = 'LocationPending';
  readonly retryable = true;
}

/** What the direct snapshot uses of the cluster (RbdClones). */
export type DirectClones = Pick<RbdClones, 'clone' | 'flatten' | 'removeSnapshot' | 'removeImage'> & { rbd: Pick<RbdClient, 'fsid' | 'info' | 'snapCreate' | 'snapProtect'> };

export interface DirectSnapshotDeps {
  clones: DirectClones;
  images: Pick<ImageClient, 'get' | 'setFormats'> & ImageLocations;
  /** takes the disk's snapshot: inside the guest's quiesce window when it runs live */
  cut: (take: () => Promise<void>) => Promise<QuiesceOutcome>;
  /** how long Glance may take to turn the image active once handed the location */
  locationTimeoutMs?: number;
  pollMs?: number;
  log?: (message: string, fields: Record<string, unknown>) => void;
}

/** Removes the copy and the source snapshot of the run, whatever step they reached. Idempotent. */
export async function removeDirectSnapshot(clones: DirectClones, names: DirectSnapshotNames): Promise<void> {
  // The copy first: an unflattened copy holds the source snapshot (EBUSY on its unprotect).
  await clones.removeImage(names.copy);
  await clones.removeSnapshot(names.disk, names.sourceSnap);
}

/**
 * The compensation of a run that failed once its direct snapshot was tried (a host worker killed
 * mid-attempt, its retries all dead): removes the copy and the source snapshot unless Glance holds
 * the copy (the image active at its location). Idempotent; waits (throws, to be retried) while
 * Glance still decides on a hand-off.
 */
export async function discardDirectSnapshot(deps: Pick<DirectSnapshotDeps, 'clones' | 'images'>, names: DirectSnapshotNames, imageId: string): Promise<{ removed: boolean }> {
  const location = glanceRbdLocation(await deps.clones.rbd.fsid(), names.copy);
  const image = await deps.images.get(imageId).catch((err: unknown) => {
    if (err instanceof ImageNotFound) return null;
    throw err;
  });
  if (image !== null) {
    if (image.status === 'active' && (await deps.images.locationUrls(imageId)).includes(location)) return { removed: false };
    if (isLocked(image)) throw new LocationPending(`Glance still processes the location of image ${imageId} (${image.status})`);
  }
  await removeDirectSnapshot(deps.clones, names);
  return { removed: true };
}

function isFinal(err: unknown): boolean {
  return (err as { retryable?: unknown } | null)?.retryable === false;
}

function isLocked(image: Image): boolean {
  return image.status === 'importing' || (image.status === 'queued' && image.properties[IMPORT_LOCK_PROPERTY] !== undefined);
}

async function waitForLocation(deps: DirectSnapshotDeps, imageId: string): Promise<Image> {
  const deadline = Date.now() + (deps.locationTimeoutMs ?? 120_000);
  for (;;) {
    const image = await deps.images.get(imageId);
    if (image.status === 'active') return image;
    if (!isLocked(image)) throw new LocationRefused(`Glance did not take the location: image ${imageId} is ${image.status} again`);
    if (Date.now() > deadline) throw new LocationPending(`Glance still processes the location of image ${imageId} (${image.status})`);
    await new Promise((r) => setTimeout(r, deps.pollMs ?? 250));
  }
}

function done(image: Image, location: string, quiesce: QuiesceOutcome): DirectSnapshotOutcome {
  return {
    done: true,
    image: { imageId: image.id, status: image.status, size: image.size ?? 0, checksum: image.checksum ?? '' },
    location,
    quiesced: quiesce.quiesced,
    freezeWindowMs: quiesce.freezeWindowMs,
    ...(quiesce.quiesceError !== undefined ? { quiesceError: quiesce.quiesceError } : {}),
  };
}

/**
 * A flatten copies the whole image: its deadline is 10 minutes plus the time at 16 MiB/s, far below
 * what a single-node test cluster does (hundreds of MiB/s) and what a loaded production cluster
 * should, so that only a cluster out of reach runs into it.
 */
export function flattenDeadlineMs(virtualSize: number): number {
  return 600_000 + Math.ceil(virtualSize / (16 * 1024 * 1024)) * 1000;
}

const NOT_FROZEN: QuiesceOutcome = { quiesced: false, freezeWindowMs: null };

/** The whole direct snapshot of `names.disk` into the queued image `imageId` (see the file's head). */
export async function directSnapshot(deps: DirectSnapshotDeps, names: DirectSnapshotNames, imageId: string, virtualSize: number): Promise<DirectSnapshotOutcome> {
  const { clones, images } = deps;
  try {
    const location = glanceRbdLocation(await clones.rbd.fsid(), names.copy);
    const before = await images.get(imageId);
    if (before.status === 'active') {
      // An attempt whose hand-off landed but whose answer was lost; any other active image is not ours.
      if ((await images.locationUrls(imageId)).includes(location)) return done(before, location, NOT_FROZEN);
      return { done: false, reason: `image ${imageId} is already active with other data` };
    }
    // Before any copy is made: a Glance without the location API, or whose policy keeps it from
    // this user (its GET asks for the same service role), refuses here, not after the flatten.
    await images.locationUrls(imageId);
    let quiesce = NOT_FROZEN;
    // A locked image holds an earlier attempt's hand-off, which Glance is still deciding on.
    if (!isLocked(before)) {
      await removeDirectSnapshot(clones, names);
      await images.setFormats(imageId, { disk_format: 'raw', container_format: 'bare' });
      quiesce = await deps.cut(() => clones.rbd.snapCreate(names.disk, names.sourceSnap));
      await clones.rbd.snapProtect(names.disk, names.sourceSnap);
      await clones.clone(names.disk, names.sourceSnap, names.copy);
      await clones.flatten(names.copy, { timeoutMs: flattenDeadlineMs(virtualSize) });
      await clones.removeSnapshot(names.disk, names.sourceSnap);
      await clones.rbd.snapCreate(names.copy, GLANCE_SNAPSHOT);
      await clones.rbd.snapProtect(names.copy, GLANCE_SNAPSHOT);
      // Checked before Glance may turn it active: the copy is the whole disk.
      const copied = (await clones.rbd.info(names.copy)).size;
      if (copied !== virtualSize) throw new LocationRefused(`the copy of ${names.disk.pool}/${names.disk.image} has ${copied} bytes, the disk ${virtualSize}`);
      await images.addLocation(imageId, location);
    }
    return done(await waitForLocation(deps, imageId), location, quiesce);
  } catch (err) {
    if (err instanceof LocationPending) throw err;
    deps.log?.('direct snapshot not taken; cleaning up', { imageId, error: errorMessage(err) });
    await removeDirectSnapshot(clones, names);
    if (isFinal(err)) return { done: false, reason: errorMessage(err) };
    throw err;
  }
}
