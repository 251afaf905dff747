// End to end with real idle Linux guests (their disks do not change, so an image must match its
// disk byte for byte): every mode produces an active image identical to the instance disk, and the
// guest is back in its prior power state with nothing left behind. Writing guests are in
// test/integration/guest/.
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { DomainState, VIR_DOMAIN_UNDEFINE_MANAGED_SAVE } from '../../../src/libvirt';
import { imagesIdentical } from '../../../src/host/qemu-img';
import { POWER_STATE_PAUSED, POWER_STATE_SHUTDOWN, type PowerState } from '../../../src/contract';
import { ImageServiceUnavailable, type ImageClient } from '../../../src/images/client';
import { startEngine, type Engine } from '../../support/engine-harness';
import { downloadImage } from '../../support/image-bytes';
import { waitForFile } from '../../support/wait-for-file';
import type { FixtureOptions, InstanceFixture } from '../../support/instance-fixture';
import { createRealGuest } from '../../support/guest/real-guest-run';

const IDLE = { linux: { workload: 'idle' as const } };

async function snapshotFixture(engine: Engine, fixtureOptions: FixtureOptions, powerState?: PowerState) {
  const fixture = await createRealGuest({ ...IDLE, ...fixtureOptions });
  try {
    const instance = await engine.register(fixture, powerState);
    const { imageId, result } = await engine.startSnapshot(instance.uuid);
    const outcome = await result.then(
      (r) => ({ result: r, error: undefined }),
      (error: unknown) => ({ result: undefined, error }),
    );
    const dom = await fixture.client.domainLookupByName(fixture.instance.name);
    const { state } = await fixture.client.domainGetState(dom);
    return {
      fixture,
      imageId,
      ...outcome,
      state,
      managedSave: await fixture.client.domainHasManagedSaveImage(dom),
      blockJob: state === DomainState.Shutoff ? null : await fixture.client.domainGetBlockJobInfo(dom, 'vda'),
      after: await engine.store.getOrThrow(instance.uuid),
      workDirs: await engine.host.workDirs.list(),
    };
  } catch (err) {
    await fixture.cleanup();
    throw err;
  }
}

async function expectImageMatchesDisk(engine: Engine, imageId: string, fixture: InstanceFixture): Promise<void> {
  const image = await engine.images.get(imageId);
  expect(image).toMatchObject({ status: 'active', disk_format: 'qcow2', container_format: 'bare' });
  const file = await downloadImage(engine.images, imageId, fixture.dir);
  expect(await imagesIdentical(file, fixture.instance.overlayPath, { forceShare: true })).toBe(true);
}

describe('snapshotInstance end to end (real libvirt, real image service)', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await startEngine();
  });
  afterAll(async () => {
    await engine?.stop();
  });

  it('live: running guest stays running, image identical to the disk', async () => {
    // No agent: a freeze and thaw write ext4's superblock and journal, so a quiesced guest's disk
    // moves on past its image; quiesced live snapshots are checked in test/integration/guest/.
    const run = await snapshotFixture(engine, { linux: { workload: 'idle', agent: false } });
    try {
      expect(run.error).toBeUndefined();
      expect(run.result).toMatchObject({ mode: 'live', status: 'active', quiesced: false });
      expect(run.state).toBe(DomainState.Running);
      expect(run.blockJob).toBeNull();
      expect(run.after.taskState).toBeNull();
      expect(run.workDirs).toEqual([]);
      await expectImageMatchesDisk(engine, run.imageId, run.fixture);
    } finally {
      await run.fixture.cleanup();
    }
  });

  it('cold from paused: managedSave, convert, recreated paused', async () => {
    const run = await snapshotFixture(engine, { pauseWhenReady: true }, POWER_STATE_PAUSED);
    try {
      expect(run.error).toBeUndefined();
      expect(run.result?.mode).toBe('cold');
      expect(run.state).toBe(DomainState.Paused);
      expect(run.managedSave).toBe(false);
      expect(run.after.taskState).toBeNull();
      expect(run.workDirs).toEqual([]);
      await expectImageMatchesDisk(engine, run.imageId, run.fixture);
    } finally {
      await run.fixture.cleanup();
    }
  });

  it('shut off: cold without managedSave, stays off', async () => {
    const run = await snapshotFixture(engine, { start: false }, POWER_STATE_SHUTDOWN);
    try {
      expect(run.error).toBeUndefined();
      expect(run.result?.mode).toBe('cold');
      expect(run.state).toBe(DomainState.Shutoff);
      expect(run.managedSave).toBe(false);
      await expectImageMatchesDisk(engine, run.imageId, run.fixture);
    } finally {
      await run.fixture.cleanup();
    }
  });
});

describe('cold snapshots forced by configuration', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await startEngine({ hostEnv: { SNAP_DISABLE_LIVE_SNAPSHOT: 'true' } });
  });
  afterAll(async () => {
    await engine?.stop();
  });

  it('cold from running: guest recreated running, no managed-save image left', async () => {
    const run = await snapshotFixture(engine, {});
    try {
      expect(run.error).toBeUndefined();
      expect(run.result?.mode).toBe('cold');
      expect(run.state).toBe(DomainState.Running);
      expect(run.managedSave).toBe(false);
      expect(run.workDirs).toEqual([]);
      await expectImageMatchesDisk(engine, run.imageId, run.fixture);
    } finally {
      await run.fixture.cleanup();
    }
  });
});

describe('failures end in a defined state', () => {
  let engine: Engine;
  let failUploads = false;
  beforeAll(async () => {
    engine = await startEngine({
      hostEnv: { SNAP_DISABLE_LIVE_SNAPSHOT: 'true' },
      wrapImages: (images): ImageClient => ({
        create: (m) => images.create(m),
        setFormats: (id, f) => images.setFormats(id, f),
        setProperties: (id, p) => images.setProperties(id, p),
        get: (id) => images.get(id),
        list: (f) => images.list(f),
        delete: (id) => images.delete(id),
        download: (id, o) => images.download(id, o),
        upload: (id, source, o) => (failUploads ? Promise.reject(new ImageServiceUnavailable('injected: image service answering 503')) : images.upload(id, source, o)),
        openStagedUpload: (id, size, token, layout) => images.openStagedUpload(id, size, token, layout),
        composes: () => images.composes(),
        stagedUpload: (id) => images.stagedUpload(id),
        appendStaged: (id, offset, body, o) => (failUploads ? Promise.reject(new ImageServiceUnavailable('injected: image service answering 503')) : images.appendStaged(id, offset, body, o)),
        commitStaged: (id, c) => images.commitStaged(id, c),
        discardStaged: (id) => images.discardStaged(id),
      }),
    });
  });
  afterAll(async () => {
    await engine?.stop();
  });

  it('an upload that keeps failing: image deleted, guest restored running, task_state None, no temp files', async () => {
    failUploads = true;
    const run = await snapshotFixture(engine, {});
    failUploads = false;
    try {
      expect(run.error).toBeInstanceOf(WorkflowFailedError);
      expect(run.state).toBe(DomainState.Running);
      expect(run.managedSave).toBe(false);
      expect(run.after.taskState).toBeNull();
      expect(run.workDirs).toEqual([]);
      await expect(engine.images.get(run.imageId)).rejects.toThrow(/No image found/);
    } finally {
      await run.fixture.cleanup();
    }
  });
});

describe('the instance deleted mid-snapshot', () => {
  let engine: Engine;
  let barrierDir: string;
  beforeAll(async () => {
    barrierDir = await mkdtemp(join(tmpdir(), 'snap-barrier-'));
    engine = await startEngine({ hostEnv: { SNAP_TEST_BARRIER_DIR: barrierDir } });
  });
  afterAll(async () => {
    await engine?.stop();
    await rm(barrierDir, { recursive: true, force: true });
  });

  it('deletes the image and leaves the deleting instance alone', async () => {
    const fixture = await createRealGuest(IDLE);
    try {
      const instance = await engine.register(fixture);
      await writeFile(join(barrierDir, 'extract.hold'), '');
      const { imageId, result } = await engine.startSnapshot(instance.uuid);
      await waitForFile(join(barrierDir, 'extract.reached'));
      // What Nova's delete does: task_state deleting, then the domain goes away.
      await engine.store.markDeleting(instance.uuid);
      await fixture.client.domainDestroy(fixture.instance.domain);
      await fixture.client.domainUndefineFlags(fixture.instance.domain, VIR_DOMAIN_UNDEFINE_MANAGED_SAVE);
      await unlink(join(barrierDir, 'extract.hold'));
      await expect(result).rejects.toBeInstanceOf(WorkflowFailedError);
      await expect(engine.images.get(imageId)).rejects.toThrow(/No image found/);
      expect((await engine.store.getOrThrow(instance.uuid)).taskState).toBe('deleting');
      expect(await engine.host.workDirs.list()).toEqual([]);
    } finally {
      await fixture.cleanup();
    }
  });
});
