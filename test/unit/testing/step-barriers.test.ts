// The fault harness's barriers, laid over the activities by the worker factories: the file protocol
// (`<step>.reached` written, held while `<step>.hold` exists) and where each activity holds.
import { existsSync } from 'node:fs';
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { POWER_STATE_RUNNING, type ControlActivities, type HostActivities, type SnapshotInstanceInfo } from '../../../src/contract';
import { holdControlActivitiesAtBarriers, holdHostActivitiesAtBarriers } from '../../../src/testing/step-barriers';
import { TestBarrier, testBarrierFromEnv } from '../../../src/testing/test-barrier';

const INFO: SnapshotInstanceInfo = { uuid: 'u', domainName: 'd', host: 'h', projectId: 'p', powerState: POWER_STATE_RUNNING, imageRef: null };

async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setTimeout(r, 10));
}

describe('step barriers', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'step-barriers-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('are off unless SNAP_TEST_BARRIER_DIR is set', () => {
    expect(testBarrierFromEnv({})).toBeUndefined();
    expect(testBarrierFromEnv({ SNAP_TEST_BARRIER_DIR: dir })).toBeInstanceOf(TestBarrier);
  });

  it('hold a host activity at its step before it runs, until the hold file goes', async () => {
    const ran: string[] = [];
    const activities = holdHostActivitiesAtBarriers(
      {
        extractSnapshot: async () => {
          ran.push('extract');
          return { path: 'p', size: 1, format: 'qcow2', quiesced: false, freezeWindowMs: null };
        },
        removeSnapshotWorkDir: async () => void ran.push('remove'),
      } as Partial<HostActivities> as HostActivities,
      new TestBarrier(dir),
    );
    await writeFile(join(dir, 'extract.hold'), '');
    const input = { domainName: 'd', workDirKey: 'k', mode: 'cold' as const, description: {} as Parameters<HostActivities['extractSnapshot']>[0]['description'] };
    const running = new MockActivityEnvironment().run(activities.extractSnapshot, input);
    await until(() => existsSync(join(dir, 'extract.reached')));
    expect(ran).toEqual([]);
    await unlink(join(dir, 'extract.hold'));
    await expect(running).resolves.toMatchObject({ path: 'p' });
    expect(ran).toEqual(['extract']);
    // the work dir removal is no step of its own: never held
    await new MockActivityEnvironment().run(activities.removeSnapshotWorkDir, { workDirKey: 'k' });
    expect(ran).toEqual(['extract', 'remove']);
  });

  it('hold setTaskState after its write, at task_state_<state>', async () => {
    const written: (string | null)[] = [];
    const activities = holdControlActivitiesAtBarriers(
      {
        setTaskState: async ({ taskState }) => {
          written.push(taskState);
          return INFO;
        },
      } as Partial<ControlActivities> as ControlActivities,
      new TestBarrier(dir),
    );
    await writeFile(join(dir, 'task_state_none.hold'), '');
    const setTaskState = (input: Parameters<ControlActivities['setTaskState']>[0]) => new MockActivityEnvironment().run(activities.setTaskState, input);
    const running = setTaskState({ instanceUuid: 'u', taskState: null, expected: ['image_uploading'] });
    await until(() => existsSync(join(dir, 'task_state_none.reached')));
    expect(written).toEqual([null]);
    await unlink(join(dir, 'task_state_none.hold'));
    await expect(running).resolves.toBe(INFO);
    await setTaskState({ instanceUuid: 'u', taskState: 'image_snapshot', expected: [null] });
    expect(existsSync(join(dir, 'task_state_image_snapshot.reached'))).toBe(true);
  });
});
