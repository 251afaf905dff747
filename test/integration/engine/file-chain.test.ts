// Nova's layout (a qcow2 overlay on a cached base) through the paths that spell the chain out for
// QEMU's tools: the block copy's delta and the cold convert read every layer libvirt records, so
// the image holds the base's data and the overlay's; a chain reaching outside the instances path
// is refused before any tool runs, stopped or running.
import { mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { POWER_STATE_SHUTDOWN, type PowerState } from '../../../src/contract';
import { BackingChainRefused } from '../../../src/host/disk-chain';
import { describeDomain } from '../../../src/host/domain-inspection';
import { hasPattern, imagesIdentical } from '../../../src/host/qemu-img';
import { runTool } from '../../../src/process/tool-process';
import { BASE_PATTERN, OVERLAY_PATTERN } from '../../../src/testing/instance-layout';
import { startEngine, type Engine } from '../../support/engine-harness';
import { downloadImage } from '../../support/image-bytes';
import { createInstanceFixture, type InstanceFixture } from '../../support/instance-fixture';

async function snapshotOf(engine: Engine, fixture: InstanceFixture, powerState?: PowerState) {
  const instance = await engine.register(fixture, powerState);
  const { imageId, result } = await engine.startSnapshot(instance.uuid, 'file-chain');
  const outcome = await result;
  return { result: outcome, file: await downloadImage(engine.images, imageId, fixture.dir) };
}

async function expectWholeChain(file: string, fixture: InstanceFixture): Promise<void> {
  expect(await hasPattern(file, BASE_PATTERN)).toBe(true);
  expect(await hasPattern(file, OVERLAY_PATTERN)).toBe(true);
  expect(await imagesIdentical(file, fixture.instance.overlayPath, { forceShare: true })).toBe(true);
}

describe('the file path on an overlay and its base (SNAP_DISABLE_BACKUP_API)', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await startEngine({ hostEnv: { SNAP_DISABLE_BACKUP_API: 'true' } });
  });
  afterAll(async () => {
    await engine?.stop();
  });

  it('live: the block copy\'s delta sits on the base libvirt records, and the image holds both layers', async () => {
    const fixture = await createInstanceFixture({ prefix: 'chain-live' });
    try {
      const { result, file } = await snapshotOf(engine, fixture);
      expect(result).toMatchObject({ mode: 'live', status: 'active', dataPath: 'block-copy' });
      await expectWholeChain(file, fixture);
    } finally {
      await fixture.cleanup();
    }
  });

  it('shut off: the convert reads the chain found in the qcow2 headers, and the image holds both layers', async () => {
    const fixture = await createInstanceFixture({ prefix: 'chain-off', start: false });
    try {
      const { result, file } = await snapshotOf(engine, fixture, POWER_STATE_SHUTDOWN);
      expect(result).toMatchObject({ mode: 'cold', status: 'active', dataPath: 'convert' });
      await expectWholeChain(file, fixture);
    } finally {
      await fixture.cleanup();
    }
  });
});

describe('a backing file outside the instances path and the image cache', () => {
  let fixture: InstanceFixture;
  let elsewhere: string;
  beforeAll(async () => {
    fixture = await createInstanceFixture({ prefix: 'chain-out', start: false });
    elsewhere = await mkdtemp(join(tmpdir(), 'not-instances-'));
    // The base moves out of the instance's directory and the overlay's header follows it.
    const moved = join(elsewhere, 'base.qcow2');
    await rename(fixture.instance.basePath, moved);
    await runTool('qemu-img', ['rebase', '-u', '-f', 'qcow2', '-F', 'qcow2', '-b', moved, fixture.instance.overlayPath]);
  });
  afterAll(async () => {
    await fixture?.cleanup();
    await rm(elsewhere, { recursive: true, force: true });
  });

  it('is refused, typed and not retryable, whether the chain comes from the headers (stopped) or from libvirt (running)', async () => {
    const { client, instance } = fixture;
    const config = { instancesPath: fixture.dir, imageCachePath: join(fixture.dir, '_base'), disableBackupApi: false, disableLiveSnapshot: false, ephemeralEncryption: false };
    await expect(describeDomain(client, instance.domain, config)).rejects.toMatchObject({ name: BackingChainRefused.name, retryable: false });
    const running = await client.domainCreateWithFlags(instance.domain, 0);
    await expect(describeDomain(client, running, config)).rejects.toMatchObject({ name: BackingChainRefused.name, retryable: false });
    // Inside the roots the same chain is read, from libvirt's <backingStore>.
    await expect(describeDomain(client, running, { ...config, instancesPath: tmpdir() })).resolves.toMatchObject({ backingChain: [{ path: join(elsewhere, 'base.qcow2'), format: 'qcow2' }] });
  });
});
