// Snapshots of a real writing guest whose root disk is a block device (Nova's images_type=lvm:
// `<disk type='block'>`, raw, named `<vg>/<instance uuid>_disk`), through the whole engine. No
// device-mapper on this machine kind, so a loop device over a sparse file stands in for the
// logical volume, named through a symlink as LVM names /dev/<vg>/<lv>. One guest: refused while no
// setting admits block devices; then cold by default (managedSave, the guest restarted from the
// save with a backup job on the device (host_device) holding the save's point in time, back running
// as the same kernel before the stream), live through the backup job where the operator allows it, and shut off (the image identical to the device). Every image is raw, a
// clean ext4 with the log contiguous; at the end the loop device is detached and its file gone.
import { access, readdir } from 'node:fs/promises';
import { WorkflowFailedError } from '@temporalio/client';
import { DomainState } from '../../../src/libvirt';
import { imagesIdentical } from '../../../src/host/qemu-img';
import { guestExec } from '../../../src/testing/guest/guest-agent';
import { bootIds, readConsole } from '../../../src/testing/guest/guest-console';
import { lastFsynced } from '../../../src/testing/guest/workload-verifiers';
import { loopDevicesOf } from '../../../src/testing/loop-device';
import { startEngine, type Engine } from '../../support/engine-harness';
import { createRealGuest, expectCleanRawImage, snapshotRealGuest, snapshotShutOffGuest, waitForFsynced, type RealGuestRun } from '../../support/guest/real-guest-run';
import type { InstanceFixture } from '../../support/instance-fixture';
import { useBlockGuests } from '../../support/block-guest';

const block = useBlockGuests();

/** The shared checks of a raw image, and no work dir of ours left under the snapshots directory. */
async function expectCleanImage(engine: Engine, run: RealGuestRun): Promise<void> {
  await expectCleanRawImage(engine, run);
  // A live run's close answers before its work dir is gone: the removals under way end first.
  await engine.host.workDirs.settled();
  expect(await readdir(engine.hostConfig.snapshotsDir).catch(() => [])).toEqual([]);
}

function bootId(fixture: InstanceFixture): Promise<string> {
  return guestExec(fixture.client, fixture.instance.domain, '/bin/cat', ['/proc/sys/kernel/random/boot_id'], { timeoutMs: 20_000 }).then((r) => r.stdout.trim());
}

let fixture: InstanceFixture | undefined;
function guest(): InstanceFixture {
  if (fixture === undefined) throw new Error('no guest (beforeAll failed)');
  return fixture;
}
beforeAll(async () => {
  fixture = await createRealGuest({ linux: { workload: 'log', rateKiB: 512 }, ...block().guestOptions() });
});
afterAll(async () => {
  // Detaches the loop device and removes its file and name, also after a failed test.
  await fixture?.cleanup();
});

/** The whole message chain of a failed run: the workflow's, its activity's, the host's error. */
function failureText(err: unknown): string {
  const texts: string[] = [];
  for (let e: unknown = err; e instanceof Error && texts.length < 8; e = e.cause) texts.push(e.message);
  return texts.join(' <- ');
}

// Engines one after the other: each runs a control worker on the one control task queue.
describe('block device, no block device configured', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await startEngine();
  });
  afterAll(async () => {
    await engine?.stop();
  });

  it('refused at lookup_domain before the guest is touched: the setting named, the image deleted, task_state none, the guest running', async () => {
    const f = guest();
    const run = await snapshotRealGuest(engine, f);
    expect(run.error).toBeInstanceOf(WorkflowFailedError);
    expect(failureText(run.error)).toMatch(/no block device may be read until SNAP_BLOCK_DEVICE_PATHS/);
    expect(run.state).toBe(DomainState.Running);
    expect(await f.client.domainHasManagedSaveImage(f.instance.domain)).toBe(false);
    expect((await engine.store.getOrThrow(f.instance.uuid ?? '')).taskState).toBeNull();
    await expect(engine.images.get(run.imageId)).rejects.toThrow(/No image found/);
    expect(await readdir(engine.hostConfig.snapshotsDir).catch(() => [])).toEqual([]);
  });
});

describe('block device, default settings (the seed: LVM is cold; the guest comes back before the stream)', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await startEngine({ hostEnv: block().hostEnv });
  });
  afterAll(async () => {
    await engine?.stop();
  });

  it('running: managed-saved, restarted with a backup job on the device holding the save, running as the same kernel; a clean raw image', async () => {
    const f = guest();
    const xml = await f.client.domainGetXMLDesc(f.instance.domain, 0);
    expect(xml).toContain(`<source dev='${f.instance.block?.devicePath ?? ''}'`);
    expect(f.instance.block?.devicePath).toBe(`${block().vgDir}/${f.instance.uuid ?? ''}_disk`);
    const bootBefore = await bootId(f);
    const run = await snapshotRealGuest(engine, f);
    expect(run.error).toBeUndefined();
    expect(run.result).toMatchObject({ mode: 'cold', status: 'active', dataPath: 'backup-job', quiesced: false });
    expect(run.state).toBe(DomainState.Running);
    expect(await f.client.domainHasManagedSaveImage(f.instance.domain)).toBe(false);
    const fsyncedAtRestore = lastFsynced(await readConsole(f.instance.consolePath), 'log');
    await waitForFsynced(f.instance.consolePath, 'log', fsyncedAtRestore + 2);
    expect(bootIds(await readConsole(f.instance.consolePath))).toEqual([bootBefore]);
    expect(await bootId(f)).toBe(bootBefore);
    await expectCleanImage(engine, run);
  });
});

describe('block device, live allowed (SNAP_BLOCK_DEVICE_LIVE_SNAPSHOT)', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await startEngine({ hostEnv: { ...block().hostEnv, SNAP_BLOCK_DEVICE_LIVE_SNAPSHOT: 'true' } });
  });
  afterAll(async () => {
    await engine?.stop();
  });

  it('running: the backup job reads the raw block device, quiesced; the guest writes on', async () => {
    const f = guest();
    const run = await snapshotRealGuest(engine, f);
    expect(run.error).toBeUndefined();
    expect(run.result).toMatchObject({ mode: 'live', status: 'active', quiesced: true, dataPath: 'backup-job', kind: 'full' });
    expect(run.result?.fullReason).toMatch(/block device/);
    expect(run.state).toBe(DomainState.Running);
    await expectCleanImage(engine, run);
    await waitForFsynced(f.instance.consolePath, 'log', lastFsynced(await readConsole(f.instance.consolePath), 'log') + 1);
  });

  it('shut off: cold, stays off, the image identical to the device; then the loop device is detached and its file removed', async () => {
    const f = guest();
    const { run, file } = await snapshotShutOffGuest(engine, f, lastFsynced(await readConsole(f.instance.consolePath), 'log') + 1);
    expect(run.error).toBeUndefined();
    expect(run.result).toMatchObject({ mode: 'cold', dataPath: 'qemu-nbd' });
    expect(run.state).toBe(DomainState.Shutoff);
    const device = f.instance.block?.devicePath ?? '';
    expect(await imagesIdentical(file ?? '', device, { format: 'raw' })).toBe(true);
    await expectCleanImage(engine, run);

    const backing = f.instance.overlayPath;
    expect(await loopDevicesOf(backing)).toHaveLength(1);
    await f.cleanup();
    expect(await loopDevicesOf(backing)).toEqual([]);
    await expect(access(backing)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(access(device)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
