// The fault harness's barriers, laid over the activities by the worker factories: the file protocol
// (`<step>.reached` written, held while `<step>.hold` exists) and where each activity holds.
import { existsSync } from 'node:fs';
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { POWER_STATE_RUNNING, type ControlActivities, type HostActivities, type SnapshotInstanceInfo } from '../../../src/contract';
import { holdControlActivitiesAtBarriers, holdHostActivitiesAtBarriers, holdLibvirtAtBarriers } from '../../../src/fault-points/activity-barriers';
import type { LibvirtSession } from '../../../src/host/libvirt-session';
import type { Domain, DomainCheckpoint, Libvirt } from '../../../src/libvirt';
import { StepBarrier, stepBarrierFromEnv } from '../../../src/fault-points/step-barrier';

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
    expect(stepBarrierFromEnv({})).toBeUndefined();
    expect(stepBarrierFromEnv({ SNAP_TEST_BARRIER_DIR: dir })).toBeInstanceOf(StepBarrier);
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
      new StepBarrier(dir),
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
      new StepBarrier(dir),
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

  it("hold a volume-backed cut before its create calls and again after them, before it reports", async () => {
    const ran: string[] = [];
    const cut = { snapshots: [], callsMs: 1, quiesced: true, freezeWindowMs: 5 };
    const activities = holdHostActivitiesAtBarriers(
      {
        snapshotVolumes: async () => {
          ran.push('cut');
          return cut;
        },
      } as Partial<HostActivities> as HostActivities,
      new StepBarrier(dir),
    );
    await writeFile(join(dir, 'snapshot_volumes.hold'), '');
    await writeFile(join(dir, 'snapshot_volumes_done.hold'), '');
    const input = { domainName: 'd', instanceUuid: 'u', projectId: 'p', runId: 'r', imageName: 'n', volumes: [], running: true, requireQuiesce: false };
    const running = new MockActivityEnvironment().run(activities.snapshotVolumes, input);
    await until(() => existsSync(join(dir, 'snapshot_volumes.reached')));
    expect(ran).toEqual([]);
    await unlink(join(dir, 'snapshot_volumes.hold'));
    await until(() => existsSync(join(dir, 'snapshot_volumes_done.reached')));
    expect(ran).toEqual(['cut']);
    let reported = false;
    void running.then(() => (reported = true));
    await new Promise((r) => setTimeout(r, 150));
    expect(reported).toBe(false);
    await unlink(join(dir, 'snapshot_volumes_done.hold'));
    await expect(running).resolves.toBe(cut);
  });

  it('hold the volume-backed wait and image step before they run', async () => {
    const ran: string[] = [];
    const activities = holdControlActivitiesAtBarriers(
      {
        awaitVolumeSnapshots: async () => void ran.push('await'),
        completeVolumeBackedImage: async ({ imageId }) => {
          ran.push('image');
          return { imageId, status: 'active', size: 0, checksum: '' };
        },
      } as Partial<ControlActivities> as ControlActivities,
      new StepBarrier(dir),
    );
    for (const [step, run] of [
      ['await_volume_snapshots', () => new MockActivityEnvironment().run(activities.awaitVolumeSnapshots, { instanceUuid: 'u', snapshotIds: [], deadlineMs: 1 })],
      ['complete_image', () => new MockActivityEnvironment().run(activities.completeVolumeBackedImage, { imageId: 'i', volumes: [] })],
    ] as const) {
      const before = ran.length;
      await writeFile(join(dir, `${step}.hold`), '');
      const running = run();
      await until(() => existsSync(join(dir, `${step}.reached`)));
      expect(ran).toHaveLength(before);
      await unlink(join(dir, `${step}.hold`));
      await running;
      expect(ran).toHaveLength(before + 1);
    }
    expect(ran).toEqual(['await', 'image']);
  });

  it('hold the listing of checkpoints that begins a retention at retain_checkpoints, the rest of libvirt untouched', async () => {
    const ran: string[] = [];
    const client = {
      checkpoints: {
        listAll: async () => {
          ran.push('listAll');
          return [];
        },
        delete: async () => void ran.push('delete'),
      },
      domainLookupByName: async () => {
        ran.push('lookup');
        return { name: 'd' };
      },
    } as unknown as Libvirt;
    const session = holdLibvirtAtBarriers({ client: async () => client } as unknown as LibvirtSession, new StepBarrier(dir));
    const held = await session.client();
    await writeFile(join(dir, 'retain_checkpoints.hold'), '');
    await held.domainLookupByName('d');
    await held.checkpoints.delete({} as DomainCheckpoint);
    // Inside an activity, which the hold heartbeats for.
    const listing = new MockActivityEnvironment().run(() => held.checkpoints.listAll({} as Domain));
    await until(() => existsSync(join(dir, 'retain_checkpoints.reached')));
    expect(ran).toEqual(['lookup', 'delete']);
    await unlink(join(dir, 'retain_checkpoints.hold'));
    await expect(listing).resolves.toEqual([]);
    expect(ran).toEqual(['lookup', 'delete', 'listAll']);
  });
});
