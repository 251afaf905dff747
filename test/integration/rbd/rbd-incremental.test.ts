// Incremental snapshots of a real writing guest whose root disk is in Ceph RBD, from Ceph's own
// change tracking (an RBD snapshot of ours per point in time, `rbd diff` between two). One cluster,
// one guest, in order: a run that fails after its RBD snapshot was taken leaves none of ours; the
// first snapshot is full; after the guest writes and its QEMU is killed -9 and started again, the
// next one is still incremental and carries only the changes; every image is a clean ext4 with the
// guest's log contiguous and identical, byte for byte, to the RBD snapshot it was read from; one
// RBD snapshot of ours stays, and a snapshot that is not ours is never touched.
import { RbdClient, runOfOurSnap } from '../../../src/ceph';
import { snapshotWorkflowId, type SnapshotResult } from '../../../src/contract';
import { ImageRequestRejected, type ImageClient } from '../../../src/images/client';
import { runToolOutput } from '../../../src/process/tool-process';
import { rbdTarget } from '../../../src/testing/instance-lifecycle';
import { startEngine, type Engine } from '../../support/engine-harness';
import { guestWrites, killQemuAndStart } from '../../support/guest/chain-checks';
import { createRealGuest, snapshotRealGuest, verifySnapshotImage, type RealGuestRun } from '../../support/guest/real-guest-run';
import { downloadImage } from '../../support/image-bytes';
import type { InstanceFixture } from '../../support/instance-fixture';
import { rbdLeftovers, rbdSnapshotsOf, useRbdGuests } from '../../support/rbd-guest';

const MiB = 1024 * 1024;
const DISK_BYTES = 128 * MiB;
/** a snapshot that is not ours (an operator's, Nova's) */
const FOREIGN_SNAP = 'operator-keep';

const rbd = useRbdGuests();

async function oursOn(fixture: InstanceFixture): Promise<string[]> {
  return (await rbdSnapshotsOf(fixture)).filter((s) => runOfOurSnap(s) !== null);
}

describe('incremental snapshots of an RBD disk from rbd diff', () => {
  let engine: Engine;
  let fixture: InstanceFixture;
  /** the next upload fails for good: a failure after the run's RBD snapshot was taken */
  let failUploads = false;

  beforeAll(async () => {
    const wrapImages = (images: ImageClient): ImageClient =>
      Object.assign(Object.create(images) as ImageClient, {
        openStagedUpload: (...args: Parameters<ImageClient['openStagedUpload']>) => {
          if (failUploads) return Promise.reject(new ImageRequestRejected(400, 'injected: the image service refuses this upload'));
          return images.openStagedUpload(...args);
        },
      });
    engine = await startEngine({ hostEnv: rbd().hostEnv, wrapImages });
    fixture = await createRealGuest({ diskSizeBytes: DISK_BYTES, linux: { workload: 'log', rateKiB: 256 }, ...rbd().guestOptions() });
    const disk = fixture.instance.rbd;
    if (disk === null) throw new Error('no RBD disk');
    await new RbdClient({ confPath: disk.confPath, user: disk.user }).snapCreate(disk, FOREIGN_SNAP);
  }, 240_000);
  afterAll(async () => {
    try {
      // Removes the disk with every snapshot on it.
      await fixture?.cleanup();
    } finally {
      await engine?.stop();
    }
  }, 120_000);

  /** The image is a clean ext4 with the log contiguous, and the very bytes of the RBD snapshot it was read from. */
  async function expectImageOfSnapshot(run: RealGuestRun, snap: string): Promise<void> {
    const contents = await verifySnapshotImage(engine, run);
    expect(contents.fsckClean).toBe(true);
    expect(contents.logicalDigest?.downloaded).toBe(contents.logicalDigest?.stored);
    expect(contents.log?.records).toBeGreaterThanOrEqual(Math.max(1, run.fsyncedBefore));
    const disk = fixture.instance.rbd;
    if (disk === null) throw new Error('no RBD disk');
    const file = await downloadImage(engine.images, run.imageId, fixture.dir);
    const target = rbdTarget({ ...disk, image: `${disk.image}@${snap}` });
    const compared = await runToolOutput('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', file, target], { okExitCodes: [0, 1] });
    expect({ exitCode: compared.exitCode, output: compared.stdout.trim() }).toEqual({ exitCode: 0, output: 'Images are identical.' });
  }

  /** What the latest run's every `activity` answered, from the workflow's history. */
  async function activityResults(of: InstanceFixture, activity: string): Promise<unknown[]> {
    const history = await engine.client.workflow.getHandle(snapshotWorkflowId(of.instance.uuid ?? '')).fetchHistory();
    const events = history.events ?? [];
    const scheduled = new Set(events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === activity).map((e) => String(e.eventId)));
    return events
      .filter((e) => scheduled.has(String(e.activityTaskCompletedEventAttributes?.scheduledEventId)))
      .map((e) => e.activityTaskCompletedEventAttributes?.result?.payloads?.[0]?.data)
      .map((data) => (data ? (JSON.parse(Buffer.from(data).toString('utf8')) as unknown) : undefined));
  }

  let first: SnapshotResult;

  it('a run that fails after its RBD snapshot was taken leaves no RBD snapshot of ours (and the one that is not ours)', async () => {
    failUploads = true;
    let run: RealGuestRun;
    try {
      run = await snapshotRealGuest(engine, fixture);
    } finally {
      failUploads = false;
    }
    const causes: string[] = [];
    for (let e: unknown = run.error; e instanceof Error; e = e.cause) causes.push(e.message);
    expect(causes.join(' <- ')).toMatch(/injected/);
    // The snapshot was taken (the extract completed) and the compensation removed it.
    expect(await activityResults(fixture, 'closeSnapshotExport')).toContainEqual({ discardedPoint: true });
    expect(await rbdSnapshotsOf(fixture)).toEqual([FOREIGN_SNAP]);
    expect(await rbdLeftovers(rbd().cluster, fixture, engine.store.chain, { foreignSnapshots: [FOREIGN_SNAP] })).toEqual([]);
    expect((await engine.images.get(run.imageId).catch(() => null))?.status ?? 'deleted').toBe('deleted');
  }, 240_000);

  it('the first snapshot is full, read from an RBD snapshot taken with the guest frozen; that snapshot stays', async () => {
    const run = await snapshotRealGuest(engine, fixture);
    expect(run.error).toBeUndefined();
    first = run.result as SnapshotResult;
    expect(first).toMatchObject({ mode: 'live', status: 'active', dataPath: 'qemu-nbd', quiesced: true, kind: 'full', fullReason: 'the first snapshot of this instance' });
    const ours = await oursOn(fixture);
    expect(ours).toHaveLength(1);
    expect((await engine.store.chain.get(first.imageId))?.checkpoint).toBe(ours[0]);
    expect(await rbdLeftovers(rbd().cluster, fixture, engine.store.chain, { foreignSnapshots: [FOREIGN_SNAP] })).toEqual([]);
    await expectImageOfSnapshot(run, ours[0] as string);
  }, 240_000);

  it('after guest writes and a kill -9 of QEMU, the next snapshot is incremental and carries only the changes', async () => {
    await guestWrites(fixture, 'changed.bin', 4);
    await killQemuAndStart(fixture);
    const run = await snapshotRealGuest(engine, fixture);
    expect(run.error).toBeUndefined();
    const second = run.result as SnapshotResult;
    expect(second).toMatchObject({ mode: 'live', status: 'active', dataPath: 'qemu-nbd', quiesced: true, kind: 'incremental', parentImageId: first.imageId });
    // What the image service recorded of what the incremental carried.
    const image = await engine.images.get(second.imageId);
    expect(image.properties).toMatchObject({ snapshot_kind: 'incremental', snapshot_parent_image: first.imageId, snapshot_changed_bytes: String(second.changedBytes) });
    expect(second.changedBytes).toBeGreaterThanOrEqual(4 * MiB);
    expect(second.changedBytes).toBeLessThan(DISK_BYTES / 8);
    expect(second.changedBytes).toBeLessThan(first.changedBytes ?? 0);
    // Retention: exactly the newest RBD snapshot of ours stays; the one that is not ours too.
    const ours = await oursOn(fixture);
    expect(ours).toEqual([(await engine.store.chain.get(second.imageId))?.checkpoint]);
    expect(await rbdSnapshotsOf(fixture)).toContain(FOREIGN_SNAP);
    expect(await rbdLeftovers(rbd().cluster, fixture, engine.store.chain, { foreignSnapshots: [FOREIGN_SNAP] })).toEqual([]);
    await expectImageOfSnapshot(run, ours[0] as string);
  }, 300_000);
});
