// setTaskState is retried by Temporal when its worker dies after the store committed but before the
// completion reached the server (found by the fault matrix: control worker kill -9 inside the
// step). The retry must accept its own write; a first attempt must not accept a foreign one.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import pino from 'pino';
import { createControlActivities } from '../../../src/activities/control-activities';
import { POWER_STATE_RUNNING, type ControlActivities, type SnapshotInstanceInfo } from '../../../src/contract';
import type { ImageClient } from '../../../src/images/client';
import { InstanceStore } from '../../../src/store';

describe('setTaskState on a retry after a committed write', () => {
  let dir: string;
  let store: InstanceStore;
  let activities: ControlActivities;
  let uuid: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'set-task-state-'));
    store = await InstanceStore.open({ kind: 'sqlite', path: join(dir, 'instances.db') });
    activities = createControlActivities({
      store,
      images: {} as ImageClient,
      createImageRecord: () => Promise.reject(new Error('unused')),
      log: pino({ level: 'silent' }),
    });
  });
  afterAll(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    uuid = randomUUID();
    await store.upsertFromInventory([{ uuid, name: `i-${uuid.slice(0, 8)}`, host: 'h1', projectId: 'p', powerState: POWER_STATE_RUNNING, disks: [] }]);
    await store.setTaskStateOrThrow(uuid, [null], 'image_snapshot_pending');
  });

  const call = (attempt: number, taskState: 'image_snapshot' | null, expected: ('image_snapshot_pending' | 'image_uploading')[], isLocal = false): Promise<SnapshotInstanceInfo> =>
    new MockActivityEnvironment({ attempt, isLocal }).run(activities.setTaskState, { instanceUuid: uuid, taskState, expected });

  it('attempt 2 finds its own image_snapshot already written and succeeds', async () => {
    await call(1, 'image_snapshot', ['image_snapshot_pending']);
    const info = await call(2, 'image_snapshot', ['image_snapshot_pending']);
    expect(info.uuid).toBe(uuid);
    expect((await store.getOrThrow(uuid)).taskState).toBe('image_snapshot');
  });

  it('attempt 2 of the final write finds None already set and succeeds', async () => {
    await store.setTaskStateOrThrow(uuid, ['image_snapshot_pending'], 'image_uploading');
    await call(1, null, ['image_uploading']);
    await expect(call(2, null, ['image_uploading'])).resolves.toMatchObject({ uuid });
  });

  it('a first attempt that finds the target state already set still fails (not its own write)', async () => {
    await store.setTaskStateOrThrow(uuid, ['image_snapshot_pending'], 'image_snapshot');
    await expect(call(1, 'image_snapshot', ['image_snapshot_pending'])).rejects.toMatchObject({ type: 'UnexpectedTaskState' });
  });

  it('a local activity run again after its worker died (attempt 1 once more) accepts its own write', async () => {
    await call(1, 'image_snapshot', ['image_snapshot_pending']);
    await expect(call(1, 'image_snapshot', ['image_snapshot_pending'], true)).resolves.toMatchObject({ uuid });
  });

  it('a retry never accepts deleting', async () => {
    await store.markDeleting(uuid);
    const err: unknown = await call(2, 'image_snapshot', ['image_snapshot_pending']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).type).toBe('UnexpectedDeletingTaskState');
    expect((await store.getOrThrow(uuid)).taskState).toBe('deleting');
  });
});
