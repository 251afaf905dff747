// Nova's direct snapshot on the host: when it applies, what it makes in the cluster and hands
// Glance, and that every way it can end leaves nothing of it behind but the image's own copy.
// Against an in-memory cluster and Glance that keep the state the real ones would.
import { CephCommandError, type ImageRef } from '../../../src/ceph';
import { directSnapshot, directSnapshotNames, discardDirectSnapshot, flattenDeadlineMs, directSnapshotRefusal, glanceRbdLocation, LocationPending, type DirectClones, type DirectSnapshotDeps } from '../../../src/host/direct-snapshot';
import { loadHostConfig } from '../../../src/host/host-config';
import { ImageNotFound, ImageRequestRejected, type Image } from '../../../src/images/client';

const FSID = '7c1f3f2e-5b8a-4c1d-9e2f-0a1b2c3d4e5f';
const IMAGE_ID = '5d3c2b1a-0f9e-4d8c-b7a6-958473625140';
const SIZE = 64 << 20;
const disk: ImageRef = { pool: 'vms', image: '0f2b6c4e-2f4a-4d1e-9a51-6d2c1b7e9f00_disk' };
const names = directSnapshotNames(disk, 'images', IMAGE_ID);
const LOCATION = `rbd://${FSID}/images/${IMAGE_ID}/snap`;

interface FakeImage {
  snaps: Map<string, { protected: boolean }>;
  parent?: string;
  size: number;
}

/** An in-memory cluster with rbd's rules: a protected snapshot with a clone cannot be unprotected, a snapshot with a clone cannot go. */
class FakeCluster implements DirectClones {
  readonly images = new Map<string, FakeImage>([[`${disk.pool}/${disk.image}`, { snaps: new Map(), size: SIZE }]]);
  readonly ops: string[] = [];
  failAt: string | null = null;
  copySize = SIZE;

  private op(name: string): void {
    this.ops.push(name);
    if (this.failAt === name) throw new CephCommandError('rbd', name, null, 'timed out after 60000 ms');
  }

  private image(ref: ImageRef): FakeImage {
    const found = this.images.get(`${ref.pool}/${ref.image}`);
    if (found === undefined) throw new CephCommandError('rbd', 'open', 2, '(2) No such file or directory');
    return found;
  }

  readonly rbd = {
    fsid: async () => FSID,
    info: async (ref: ImageRef) => ({ name: ref.image, id: 'id', size: this.image(ref).size, objectSize: 4 << 20, snapshotCount: this.image(ref).snaps.size, features: [] }),
    snapCreate: async (ref: ImageRef, snap: string) => {
      this.op(`snap create ${snap}`);
      this.image(ref).snaps.set(snap, { protected: false });
    },
    snapProtect: async (ref: ImageRef, snap: string) => {
      this.op(`snap protect ${snap}`);
      const s = this.image(ref).snaps.get(snap);
      if (s === undefined) throw new CephCommandError('rbd', 'protect', 2, '(2) No such file or directory');
      s.protected = true;
    },
  };

  async clone(parent: ImageRef, snap: string, child: ImageRef): Promise<void> {
    this.op('clone');
    this.images.set(`${child.pool}/${child.image}`, { snaps: new Map(), parent: `${parent.pool}/${parent.image}@${snap}`, size: this.copySize });
  }

  async flatten(ref: ImageRef): Promise<void> {
    this.op('flatten');
    delete this.image(ref).parent;
  }

  async removeSnapshot(ref: ImageRef, snap: string): Promise<boolean> {
    const image = this.images.get(`${ref.pool}/${ref.image}`);
    if (image?.snaps.has(snap) !== true) return false;
    const spec = `${ref.pool}/${ref.image}@${snap}`;
    if ([...this.images.values()].some((i) => i.parent === spec)) throw new CephCommandError('rbd', 'snap unprotect', 16, '(16) Device or resource busy');
    this.op(`snap rm ${snap}`);
    image.snaps.delete(snap);
    return true;
  }

  async removeImage(ref: ImageRef): Promise<boolean> {
    const image = this.images.get(`${ref.pool}/${ref.image}`);
    if (image === undefined) return false;
    for (const snap of [...image.snaps.keys()]) await this.removeSnapshot(ref, snap);
    this.op('rm image');
    this.images.delete(`${ref.pool}/${ref.image}`);
    return true;
  }

  /** what is in the cluster besides the disk itself */
  leftovers(): string[] {
    const out: string[] = [];
    for (const [spec, image] of this.images) {
      if (spec !== `${disk.pool}/${disk.image}`) out.push(spec);
      for (const snap of image.snaps.keys()) out.push(`${spec}@${snap}`);
    }
    return out;
  }
}

type GlanceAnswer = 'active' | 'refuse' | 'revert' | 'pending' | 'no-api';

/** A Glance with the location API: it answers the hand-off as told. */
class FakeGlance {
  image: Image = { id: IMAGE_ID, name: 's', status: 'queued', visibility: 'private', properties: {} } as Image;
  locations: string[] = [];
  constructor(public answer: GlanceAnswer) {}
  readonly get = async (): Promise<Image> => ({ ...this.image, properties: { ...this.image.properties } });
  readonly setFormats = async (): Promise<Image> => this.image;
  readonly locationUrls = async (): Promise<string[]> => {
    if (this.answer === 'no-api') throw new ImageNotFound(IMAGE_ID, 'The resource could not be found.');
    return this.locations;
  };
  readonly addLocation = async (_id: string, url: string): Promise<void> => {
    if (this.answer === 'refuse') throw new ImageRequestRejected(403, 'Forbidden: add_location is disallowed by policy');
    if (this.answer === 'revert') return;
    if (this.answer === 'pending') {
      this.image = { ...this.image, status: 'importing' };
      return;
    }
    this.locations.push(url);
    this.image = { ...this.image, status: 'active', size: SIZE };
  };
}

function deps(cluster: FakeCluster, glance: FakeGlance): DirectSnapshotDeps {
  return {
    clones: cluster,
    images: glance,
    cut: async (take) => {
      await take();
      return { quiesced: true, freezeWindowMs: 5 };
    },
    locationTimeoutMs: 50,
    pollMs: 5,
  };
}

describe('when the direct snapshot applies', () => {
  it('only for an RBD disk on a host that names Glance\'s RBD pool', () => {
    expect(directSnapshotRefusal('rbd', { glancePool: 'images' })).toBeNull();
    expect(directSnapshotRefusal('rbd', {})).toMatch(/SNAP_GLANCE_RBD_POOL/);
    expect(directSnapshotRefusal('file', { glancePool: 'images' })).toMatch(/not an RBD image/);
    expect(directSnapshotRefusal(null, { glancePool: 'images' })).toMatch(/not an RBD image/);
  });

  it('reads SNAP_GLANCE_RBD_POOL as a pool name, off when unset', () => {
    expect(loadHostConfig({ SNAP_HOST: 'h' }).rbd.glancePool).toBeUndefined();
    expect(loadHostConfig({ SNAP_HOST: 'h', SNAP_GLANCE_RBD_POOL: 'images' }).rbd.glancePool).toBe('images');
    for (const pool of ['-p', 'images/x', 'a@b', '']) expect(() => loadHostConfig({ SNAP_HOST: 'h', SNAP_GLANCE_RBD_POOL: pool })).toThrow(/SNAP_GLANCE_RBD_POOL/);
  });

  it('names the run\'s own snapshot and copy, and the location Glance\'s rbd store reads', () => {
    expect(names).toEqual({ disk, sourceSnap: `direct-${IMAGE_ID}`, copy: { pool: 'images', image: IMAGE_ID } });
    expect(glanceRbdLocation(FSID, names.copy)).toBe(LOCATION);
  });

  it('gives the flatten 10 minutes plus the time at 16 MiB/s', () => {
    expect(flattenDeadlineMs(0)).toBe(600_000);
    expect(flattenDeadlineMs(1024 ** 3)).toBe(600_000 + 64_000);
  });
});

describe('the direct snapshot', () => {
  it("does Nova's steps in Nova's order, hands Glance the location, and leaves only the image's copy with its protected snap", async () => {
    const cluster = new FakeCluster();
    const glance = new FakeGlance('active');
    const out = await directSnapshot(deps(cluster, glance), names, IMAGE_ID, SIZE);
    expect(out).toEqual({ done: true, image: { imageId: IMAGE_ID, status: 'active', size: SIZE, checksum: '' }, location: LOCATION, quiesced: true, freezeWindowMs: 5 });
    expect(cluster.ops).toEqual([`snap create direct-${IMAGE_ID}`, `snap protect direct-${IMAGE_ID}`, 'clone', 'flatten', `snap rm direct-${IMAGE_ID}`, 'snap create snap', 'snap protect snap']);
    expect(cluster.leftovers()).toEqual([`images/${IMAGE_ID}`, `images/${IMAGE_ID}@snap`]);
    expect(glance.locations).toEqual([LOCATION]);
  });

  it.each<[string, GlanceAnswer]>([
    ['refuses the location (policy)', 'refuse'],
    ['takes it, then drops it (a location it cannot read)', 'revert'],
  ])('when Glance %s: nothing of it is left, and the reason says why (the caller streams)', async (_what, answer) => {
    const cluster = new FakeCluster();
    const out = await directSnapshot(deps(cluster, new FakeGlance(answer)), names, IMAGE_ID, SIZE);
    expect(out.done).toBe(false);
    expect(out.done === false && out.reason).toMatch(answer === 'refuse' ? /policy/ : /did not take the location/);
    expect(cluster.leftovers()).toEqual([]);
  });

  it('an image service without the location API (an older Glance, the embedded one) is found out before anything is made', async () => {
    const cluster = new FakeCluster();
    const out = await directSnapshot(deps(cluster, new FakeGlance('no-api')), names, IMAGE_ID, SIZE);
    expect(out).toMatchObject({ done: false, reason: expect.stringMatching(/could not be found/) });
    expect(cluster.ops).toEqual([]);
    expect(cluster.leftovers()).toEqual([]);
  });

  it('a copy of another size is never handed to Glance', async () => {
    const cluster = new FakeCluster();
    cluster.copySize = SIZE - 4096;
    const glance = new FakeGlance('active');
    const out = await directSnapshot(deps(cluster, glance), names, IMAGE_ID, SIZE);
    expect(out).toMatchObject({ done: false });
    expect(glance.locations).toEqual([]);
    expect(cluster.leftovers()).toEqual([]);
  });

  it.each(['clone', 'flatten', 'snap create snap'])('a transient failure at %s is cleaned up and thrown, to be retried', async (step) => {
    const cluster = new FakeCluster();
    cluster.failAt = step;
    await expect(directSnapshot(deps(cluster, new FakeGlance('active')), names, IMAGE_ID, SIZE)).rejects.toMatchObject({ retryable: true });
    expect(cluster.leftovers()).toEqual([]);
  });

  it('a retry first removes what an earlier attempt left (the copy before the snapshot it holds), then makes everything again', async () => {
    const cluster = new FakeCluster();
    await cluster.rbd.snapCreate(disk, names.sourceSnap);
    await cluster.rbd.snapProtect(disk, names.sourceSnap);
    await cluster.clone(disk, names.sourceSnap, names.copy);
    cluster.ops.length = 0;
    const out = await directSnapshot(deps(cluster, new FakeGlance('active')), names, IMAGE_ID, SIZE);
    expect(out.done).toBe(true);
    expect(cluster.ops.slice(0, 3)).toEqual(['rm image', `snap rm direct-${IMAGE_ID}`, `snap create direct-${IMAGE_ID}`]);
    expect(cluster.leftovers()).toEqual([`images/${IMAGE_ID}`, `images/${IMAGE_ID}@snap`]);
  });

  it('an image already active at our location is done (a lost answer); active with other data, it is not ours', async () => {
    const cluster = new FakeCluster();
    const glance = new FakeGlance('active');
    glance.image = { ...glance.image, status: 'active', size: SIZE };
    glance.locations = [LOCATION];
    await expect(directSnapshot(deps(cluster, glance), names, IMAGE_ID, SIZE)).resolves.toMatchObject({ done: true, location: LOCATION });
    expect(cluster.ops).toEqual([]);
    glance.locations = ['file:///var/lib/glance/images/x'];
    await expect(directSnapshot(deps(cluster, glance), names, IMAGE_ID, SIZE)).resolves.toMatchObject({ done: false, reason: expect.stringMatching(/already active/) });
  });

  it('a hand-off Glance still processes past the wait is kept for the retry, never removed under it', async () => {
    const cluster = new FakeCluster();
    await expect(directSnapshot(deps(cluster, new FakeGlance('pending')), names, IMAGE_ID, SIZE)).rejects.toMatchObject({ name: 'LocationPending', retryable: true });
    expect(cluster.leftovers()).toEqual([`images/${IMAGE_ID}`, `images/${IMAGE_ID}@snap`]);
  });
});

describe('the compensation of a run whose direct attempt was killed (discardDirectSnapshot)', () => {
  /** What an attempt killed after its clone leaves: the source snapshot protected, the unflattened copy. */
  async function killedAfterClone(cluster: FakeCluster): Promise<void> {
    await cluster.rbd.snapCreate(disk, names.sourceSnap);
    await cluster.rbd.snapProtect(disk, names.sourceSnap);
    await cluster.clone(disk, names.sourceSnap, names.copy);
  }

  it('removes the copy and the source snapshot; a repeat finds nothing and changes nothing', async () => {
    const cluster = new FakeCluster();
    const glance = new FakeGlance('active');
    await killedAfterClone(cluster);
    expect(cluster.leftovers()).toEqual([`${disk.pool}/${disk.image}@${names.sourceSnap}`, `images/${IMAGE_ID}`]);
    await expect(discardDirectSnapshot(deps(cluster, glance), names, IMAGE_ID)).resolves.toEqual({ removed: true });
    expect(cluster.leftovers()).toEqual([]);
    await expect(discardDirectSnapshot(deps(cluster, glance), names, IMAGE_ID)).resolves.toEqual({ removed: true });
    expect(cluster.leftovers()).toEqual([]);
  });

  it('keeps the copy Glance holds (the image active at its location)', async () => {
    const cluster = new FakeCluster();
    const glance = new FakeGlance('active');
    expect(await directSnapshot(deps(cluster, glance), names, IMAGE_ID, SIZE)).toMatchObject({ done: true });
    await expect(discardDirectSnapshot(deps(cluster, glance), names, IMAGE_ID)).resolves.toEqual({ removed: false });
    expect(cluster.leftovers()).toEqual([`images/${IMAGE_ID}`, `images/${IMAGE_ID}@snap`]);
  });

  it('waits while Glance still decides on the hand-off (retried), and removes everything once the image is gone', async () => {
    const cluster = new FakeCluster();
    const glance = new FakeGlance('active');
    await killedAfterClone(cluster);
    glance.image = { ...glance.image, status: 'importing' };
    await expect(discardDirectSnapshot(deps(cluster, glance), names, IMAGE_ID)).rejects.toBeInstanceOf(LocationPending);
    expect(cluster.leftovers()).toHaveLength(2);
    const gone = Object.assign(Object.create(glance) as FakeGlance, { get: async () => Promise.reject(new ImageNotFound(IMAGE_ID)) });
    await expect(discardDirectSnapshot(deps(cluster, gone), names, IMAGE_ID)).resolves.toEqual({ removed: true });
    expect(cluster.leftovers()).toEqual([]);
  });
});
