// The compensation of a failed volume-backed run (deleteVolumeSnapshots) against an in-memory
// Cinder: every snapshot with the run's tag deleted once Cinder lets it (a snapshot still
// `creating`, cinder-volume away, is waited for); an attempt that runs out of time fails retryably,
// naming each snapshot the run still holds and its status, so the run's failure can say what is left.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import { MockActivityEnvironment } from '@temporalio/testing';
import pino from 'pino';
import { createVolumeControlActivities } from '../../../src/activities/volume-activities';
import { createRunSnapshots, type CinderClient } from '../../../src/cinder';
import { POWER_STATE_RUNNING } from '../../../src/contract';
import type { ImageClient } from '../../../src/images/client';
import { InstanceStore } from '../../../src/store';
import { FakeCinder } from '../../support/stubs/fake-cinder';

describe('deleteVolumeSnapshots, the compensation of a volume-backed run', () => {
  let dir: string;
  let store: InstanceStore;
  let cinder: FakeCinder;
  const uuid = randomUUID();
  const volumes = [randomUUID(), randomUUID()].map((volumeId, i) => ({ volumeId, device: `vd${'ab'[i] ?? 'z'}`, root: i === 0, sizeGiB: 1 }));

  const cleanUp = (runId: string): Promise<{ deleted: string[] }> =>
    new MockActivityEnvironment().run(
      createVolumeControlActivities({ store, images: {} as ImageClient, cinder: () => cinder as unknown as CinderClient, cleanupAttemptMs: 150, log: pino({ level: 'silent' }) }).deleteVolumeSnapshots,
      { instanceUuid: uuid, runId },
    );

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'volume-cleanup-'));
    store = await InstanceStore.open({ kind: 'sqlite', path: join(dir, 'instances.db') });
    await store.upsertFromInventory([{ uuid, name: 'i-vol', host: 'h1', projectId: 'p', powerState: POWER_STATE_RUNNING, disks: [] }]);
  });
  afterAll(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    cinder = new FakeCinder();
  });

  it("deletes the run's snapshots once they leave creating, and no other run's", async () => {
    const ours = await createRunSnapshots(cinder, 'run-1', 'n', volumes);
    await createRunSnapshots(cinder, 'run-2', 'n', volumes);
    setTimeout(() => cinder.setAll('available'), 50);
    const { deleted } = await cleanUp('run-1');
    expect(deleted.sort()).toEqual(ours.snapshots.map((s) => s.snapshotId).sort());
    expect([...cinder.snapshots.values()].map((s) => s.metadata.snapshot_run)).toEqual(['run-2', 'run-2']);
  });

  it('fails retryably at the attempt\'s deadline while a snapshot stays creating, naming each one left', async () => {
    const ours = await createRunSnapshots(cinder, 'run-1', 'n', volumes);
    const failure = await cleanUp('run-1').catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure).toMatchObject({ type: 'VolumeSnapshotsNotDeletable', nonRetryable: false });
    for (const s of ours.snapshots) expect((failure as Error).message).toContain(`${s.snapshotId} (creating)`);
    // nothing was given up on: the next attempt, once cinder-volume is back, removes them
    expect(cinder.snapshots.size).toBe(2);
    cinder.setAll('available');
    await expect(cleanUp('run-1')).resolves.toMatchObject({ deleted: expect.arrayContaining(ours.snapshots.map((s) => s.snapshotId)) });
    expect(cinder.snapshots.size).toBe(0);
  });
});
