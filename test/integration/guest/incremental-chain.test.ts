// The survival matrix of incremental snapshots, on one real guest whose chain goes through every
// event in turn: each snapshot is incremental when it may be, full with its reason when it must be,
// and always the guest's disk at its point in time (qemu-img compare with a frozen copy, e2fsck).
// The host worker killed in the middle of an incremental is in incremental-resume.test.ts.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { POWER_STATE_RUNNING, type SnapshotResult } from '../../../src/contract';
import { LOGICAL_DIGEST_PROPERTY } from '../../../src/images/client';
import { Libvirt } from '../../../src/libvirt';
import { startEngine, type Engine } from '../../support/engine-harness';
import { restartLibvirtd } from '../../support/fault-host-ops';
import {
  frozenCopy,
  guestWrites,
  imageMatchesFrozen,
  killQemuAndStart,
  managedSaveAndRestore,
  poweroffInGuest,
  rebootInGuest,
  settle,
  startAndWait,
} from '../../support/guest/chain-checks';
import { createRealGuest, snapshotRealGuest, verifySnapshotImage } from '../../support/guest/real-guest-run';
import type { InstanceFixture } from '../../support/instance-fixture';
import { waitForFile } from '../../support/wait-for-file';

const MiB = 1024 * 1024;

describe('incremental snapshots through reboots, restarts and crashes', () => {
  let engine: Engine;
  let fixture: InstanceFixture;
  let uuid: string;
  const taken: SnapshotResult[] = [];
  /** the connection opened after the libvirtd restart (the fixture's own died with the daemon) */
  let reconnected: Libvirt | undefined;

  let barrierDir: string;

  beforeAll(async () => {
    barrierDir = await mkdtemp(join(tmpdir(), 'snapchain-barriers-'));
    engine = await startEngine({ captureLogs: true, hostEnv: { SNAP_TEST_BARRIER_DIR: barrierDir } });
    fixture = await createRealGuest({ prefix: 'snapchain', diskSizeBytes: 128 * MiB, linux: { workload: 'idle' } });
    uuid = (await engine.register(fixture, POWER_STATE_RUNNING)).uuid;
  }, 240_000);
  afterAll(async () => {
    try {
      await fixture?.cleanup();
    } finally {
      await reconnected?.close();
      await engine?.stop();
      await rm(barrierDir, { recursive: true, force: true });
    }
  }, 120_000);

  /** Writes, settles, copies the disk, snapshots, and checks the image against the copy. */
  async function snapshotAfterWrites(label: string, mib: number): Promise<SnapshotResult> {
    await guestWrites(fixture, `${label}.bin`, mib);
    await settle(fixture);
    const frozen = await frozenCopy(fixture, label);
    const run = await snapshotRealGuest(engine, fixture);
    if (run.error !== undefined) throw run.error;
    const result = run.result as SnapshotResult;
    const compared = await imageMatchesFrozen(engine.images, run.imageId, frozen, fixture.dir);
    expect(compared).toEqual({ identical: true, output: expect.any(String) as string });
    const contents = await verifySnapshotImage(engine, run);
    expect(contents.fsckClean).toBe(true);
    expect(contents.logicalDigest?.stored).toBe(contents.logicalDigest?.downloaded);
    // The store and snapshot.end say what the result says.
    const row = await engine.store.chain.get(result.imageId);
    expect(row).toMatchObject({ kind: result.kind, fullReason: result.fullReason ?? null, parentImageId: result.parentImageId ?? null });
    const end = engine.logs.find((l) => l.msg === 'snapshot.end' && l.image_id === result.imageId);
    expect(end).toMatchObject({ kind: result.kind });
    const image = await engine.images.get(result.imageId);
    expect(image.properties.snapshot_kind).toBe(result.kind);
    expect(image.properties[LOGICAL_DIGEST_PROPERTY]).toBeDefined();
    taken.push(result);
    return result;
  }

  const last = (): SnapshotResult => taken[taken.length - 1] as SnapshotResult;

  it('the first snapshot is full (the first of this instance), the next one incremental: only the changes are sent', async () => {
    const first = await snapshotAfterWrites('s1', 8);
    expect(first).toMatchObject({ kind: 'full', fullReason: 'the first snapshot of this instance' });
    const second = await snapshotAfterWrites('s2', 4);
    expect(second).toMatchObject({ kind: 'incremental', parentImageId: first.imageId });
    expect(second.changedBytes).toBeLessThan(6 * MiB);
    expect(second.changedBytes).toBeGreaterThanOrEqual(4 * MiB);
  }, 240_000);

  it('a reboot inside the guest: incremental', async () => {
    await rebootInGuest(fixture);
    const before = last();
    expect(await snapshotAfterWrites('s3', 2)).toMatchObject({ kind: 'incremental', parentImageId: before.imageId });
  }, 240_000);

  it('shutdown and start: the bitmap lives in the qcow2, incremental', async () => {
    await poweroffInGuest(fixture);
    await startAndWait(fixture);
    const before = last();
    expect(await snapshotAfterWrites('s4', 2)).toMatchObject({ kind: 'incremental', parentImageId: before.imageId });
  }, 240_000);

  it('managedSave and restore: incremental', async () => {
    await managedSaveAndRestore(fixture);
    const before = last();
    expect(await snapshotAfterWrites('s5', 2)).toMatchObject({ kind: 'incremental', parentImageId: before.imageId });
  }, 240_000);

  it('a libvirtd restart: incremental', async () => {
    await restartLibvirtd(fixture.client.uri);
    // The fixture's connection died with the daemon.
    reconnected = await Libvirt.connect(fixture.client.uri);
    fixture.client = reconnected;
    const before = last();
    expect(await snapshotAfterWrites('s6', 2)).toMatchObject({ kind: 'incremental', parentImageId: before.imageId });
  }, 240_000);

  it('retention: only the newest checkpoint is left on the domain, older chain rows are retired', async () => {
    const dom = await fixture.client.domainLookupByName(fixture.instance.name);
    const names = (await fixture.client.checkpoints.listAll(dom)).map((c) => c.name);
    const newest = await engine.store.chain.get(last().imageId);
    expect(names).toEqual([newest?.checkpoint]);
    const rows = await engine.store.chain.list(uuid);
    expect(rows.filter((r) => !r.retired).map((r) => r.imageId)).toEqual([last().imageId]);
  }, 60_000);

  it('libvirt forgot the checkpoint (metadata only): redefined from the store, incremental', async () => {
    const dom = await fixture.client.domainLookupByName(fixture.instance.name);
    const [cp] = await fixture.client.checkpoints.listAll(dom);
    if (cp === undefined) throw new Error('no checkpoint to forget');
    await fixture.client.checkpoints.delete(cp, 2 /* VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY */);
    const before = last();
    expect(await snapshotAfterWrites('s7', 2)).toMatchObject({ kind: 'incremental', parentImageId: before.imageId });
  }, 240_000);

  it('a checkpoint deleted by hand: full, with the reason', async () => {
    const dom = await fixture.client.domainLookupByName(fixture.instance.name);
    for (const cp of await fixture.client.checkpoints.listAll(dom)) await fixture.client.checkpoints.delete(cp);
    const result = await snapshotAfterWrites('s8', 2);
    expect(result.kind).toBe('full');
    expect(result.fullReason).toMatch(/is gone from libvirt and could not be redefined/);
  }, 240_000);

  it('the parent image deleted: full, with the reason', async () => {
    const parent = last().imageId;
    await engine.images.delete(parent);
    const result = await snapshotAfterWrites('s9', 2);
    expect(result.kind).toBe('full');
    expect(result.fullReason).toBe(`parent image ${parent} is deleted`);
    // Its child images are untouched by the deletion: the first incremental still downloads whole.
    expect((await engine.images.get((taken[1] as SnapshotResult).imageId)).status).toBe('active');
  }, 240_000);

  it('the parent image deleted while the incremental is under way: the same point in time sent whole, full with the reason', async () => {
    await snapshotAfterWrites('s9b', 2); // an incremental over s9, whose parent this run deletes
    const parent = last().imageId;
    // The barrier marks every step it passes: only this run's mark counts.
    await rm(join(barrierDir, 'upload.reached'), { force: true });
    await writeFile(join(barrierDir, 'upload.hold'), '');
    const running = snapshotAfterWrites('s9c', 2);
    await waitForFile(join(barrierDir, 'upload.reached'), 120_000);
    await engine.images.delete(parent);
    await rm(join(barrierDir, 'upload.hold'), { force: true });
    const result = await running;
    expect(result.kind).toBe('full');
    expect(result.fullReason).toBe(`parent image ${parent} is deleted by the time the incremental was sent: this snapshot was sent whole`);
    // Its checkpoint stays the chain's: the next one builds on it.
    expect(await snapshotAfterWrites('s9d', 2)).toMatchObject({ kind: 'incremental', parentImageId: result.imageId });
  }, 300_000);

  it('kill -9 of QEMU: the bitmap is inconsistent, full with the reason; the one after is incremental again', async () => {
    await killQemuAndStart(fixture);
    const result = await snapshotAfterWrites('s10', 2);
    expect(result.kind).toBe('full');
    expect(result.fullReason).toMatch(/cannot be used/);
    expect(await snapshotAfterWrites('s11', 2)).toMatchObject({ kind: 'incremental', parentImageId: result.imageId });
  }, 300_000);
});
