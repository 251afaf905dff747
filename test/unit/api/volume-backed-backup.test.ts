// Nova's backup() refuses a volume-backed instance: createBackup (and a backup schedule, each of
// whose runs is one) on such a server answers 400 with Nova's words and makes nothing, after the
// checks Nova makes first (404 for a server the caller cannot see, the policy's 403, the metadata
// quota before 2.39, the state's 409). The compute API's routes on Fastify, with a starter and a
// schedule service that only record being reached.
import pino from 'pino';
import { Registry } from 'prom-client';
import type { Identity, IdentitySource } from '../../../src/auth';
import { createApiApp } from '../../../src/api/api-app';
import type { CreateBackupPolicy } from '../../../src/api/backup-policy';
import type { ApiServices } from '../../../src/api/request-context';
import type { SnapshotRuns } from '../../../src/api/snapshot-runs';
import type { ImageClient } from '../../../src/images/client';
import type { Instance, InstanceStore } from '../../../src/store';
import type { BackupSchedules, BackupScheduleView } from '../../../src/temporal/backup-schedules';
import { instanceWith, refusingStarter } from '../../support/refusing-starter';

const ROOT = { volumeId: '33333333-3333-4333-8333-333333333333', device: 'vda', root: true };
const DATA = { volumeId: '44444444-4444-4444-8444-444444444444', device: 'vdb', root: false };
const REFUSAL = { badRequest: { code: 400, message: 'Backup is not supported for volume-backed instances.' } };
const IDENTITIES: Record<string, Identity> = {
  member: { kind: 'project', projectId: 'p1', projectAdmin: false, userId: 'u1' },
  stranger: { kind: 'project', projectId: 'p2', projectAdmin: false, userId: 'u2' },
  admin: { kind: 'cloud-admin', projectId: 'admin', userId: 'u0' },
};

interface Stubs {
  /** what the starter's store and Temporal client were asked (a refused request asks nothing) */
  touched: string[];
  /** images the route asked the image service to create */
  imageCreates: number;
  /** calls on the schedule service */
  scheduleCalls: string[];
}

async function apiWith(instance: Instance, policy: CreateBackupPolicy = 'project_member_or_admin') {
  const { starter, touched } = refusingStarter();
  const stubs: Stubs = { touched, imageCreates: 0, scheduleCalls: [] };
  const images = {
    composes: async () => false,
    create: async () => {
      stubs.imageCreates += 1;
      throw new Error('the image service is down');
    },
  } as unknown as ImageClient;
  const view = (backup: BackupScheduleView['backup']): BackupScheduleView => ({
    scheduleId: `backup-${instance.uuid}`, instanceUuid: instance.uuid, projectId: instance.projectId, backup, spec: { cron: '@daily' },
    paused: false, note: null, timing: { intervalsSeconds: [], jitterSeconds: 0 }, nextRuns: [], recentRuns: [], catchupWindowSeconds: 3600,
  });
  const schedules = {
    namespace: 'default',
    describe: async () => (stubs.scheduleCalls.push('describe'), null),
    create: async (_target: unknown, _spec: unknown, backup: BackupScheduleView['backup']) => (stubs.scheduleCalls.push('create'), view(backup)),
  } as unknown as BackupSchedules;
  const log = pino({ level: 'silent' });
  const services: ApiServices = {
    store: { get: async (id: string) => (id === instance.uuid ? instance : undefined) } as unknown as InstanceStore,
    starter,
    runs: {} as SnapshotRuns,
    imagesFor: () => images,
    baseUrl: 'http://compute.invalid',
    imageUrl: 'http://image.invalid',
    createBackupPolicy: policy,
    schedules,
    backupSchedulePolicy: policy,
    temporalUiUrl: 'http://ui.invalid',
    log,
  };
  const auth: IdentitySource = { authenticate: (token) => IDENTITIES[token ?? ''] ?? null };
  const app = await createApiApp({ services, auth, registry: new Registry(), maxBodyBytes: 112 * 1024, observe: () => undefined });
  const call = async (method: 'POST' | 'PUT', path: string, token: string, body: unknown, version = '2.45') => {
    const res = await app.inject({ method, url: path, headers: { 'x-auth-token': token, 'openstack-api-version': `compute ${version}`, 'content-type': 'application/json' }, payload: JSON.stringify(body) });
    return { status: res.statusCode, body: res.body.length > 0 ? (JSON.parse(res.body) as unknown) : undefined };
  };
  return { app, stubs, call };
}

const daily = { name: 'nightly', backup_type: 'daily', rotation: 7 };
const createBackup = (body: Record<string, unknown> = daily) => ({ createBackup: body });
const schedule = { backup_schedule: { cron: '0 3 * * *', backup_type: 'daily', rotation: 7 } };

describe('createBackup on a volume-backed server', () => {
  it("answers Nova's 400 and makes nothing: no image, no task_state, no instance action, no run", async () => {
    const instance = instanceWith([DATA, ROOT]);
    const { app, stubs, call } = await apiWith(instance);
    try {
      expect(await call('POST', `/v2.1/servers/${instance.uuid}/action`, 'member', createBackup())).toEqual({ status: 400, body: REFUSAL });
      // a cloud admin is refused alike: the rule is the instance's, not the caller's
      expect(await call('POST', `/v2.1/servers/${instance.uuid}/action`, 'admin', createBackup())).toEqual({ status: 400, body: REFUSAL });
      expect(stubs).toEqual({ touched: [], imageCreates: 0, scheduleCalls: [] });
    } finally {
      await app.close();
    }
  });

  it("comes after Nova's earlier checks: 404 for another project's server, the policy's 403, the metadata quota's 403 before 2.39, and the state's 409", async () => {
    const instance = instanceWith([ROOT]);
    const path = `/v2.1/servers/${instance.uuid}/action`;
    const open = await apiWith(instance);
    const narrow = await apiWith(instance, 'admin');
    const busy = await apiWith({ ...instance, taskState: 'image_uploading' });
    const errored = await apiWith({ ...instance, vmState: 'error' });
    try {
      expect((await open.call('POST', path, 'stranger', createBackup())).status).toBe(404);
      expect(await narrow.call('POST', path, 'member', createBackup())).toEqual({ status: 403, body: { forbidden: { code: 403, message: "Policy doesn't allow os_compute_api:os-create-backup to be performed." } } });
      const metadata = Object.fromEntries(Array.from({ length: 129 }, (_, i) => [`k${i}`, 'v']));
      expect(await open.call('POST', path, 'member', createBackup({ ...daily, metadata }), '2.38')).toEqual({ status: 403, body: { forbidden: { code: 403, message: 'Image metadata limit exceeded' } } });
      expect(await busy.call('POST', path, 'member', createBackup())).toEqual({
        status: 409,
        body: { conflictingRequest: { code: 409, message: `Cannot 'createBackup' instance ${instance.uuid} while it is in task_state image_uploading` } },
      });
      expect((await errored.call('POST', path, 'member', createBackup())).status).toBe(409);
      for (const api of [open, narrow, busy, errored]) expect(api.stubs).toEqual({ touched: [], imageCreates: 0, scheduleCalls: [] });
    } finally {
      await Promise.all([open, narrow, busy, errored].map((api) => api.app.close()));
    }
  });

  it('leaves createImage of the same server alone, and createBackup of a server whose only volume is a data disk', async () => {
    const volumeBacked = instanceWith([ROOT]);
    const imageBacked = instanceWith([DATA]);
    const snapshot = await apiWith(volumeBacked);
    const backup = await apiWith(imageBacked);
    try {
      // both reach the image service (down here: 503), past the refusal
      expect((await snapshot.call('POST', `/v2.1/servers/${volumeBacked.uuid}/action`, 'member', { createImage: { name: 'snap' } })).status).toBe(503);
      expect((await backup.call('POST', `/v2.1/servers/${imageBacked.uuid}/action`, 'member', createBackup())).status).toBe(503);
      expect([snapshot.stubs.imageCreates, backup.stubs.imageCreates]).toEqual([1, 1]);
    } finally {
      await Promise.all([snapshot.app.close(), backup.app.close()]);
    }
  });
});

it('the starter refuses every backup request of a volume-backed instance, an /ops retry of a failed backup too', async () => {
  const { starter, touched } = refusingStarter();
  const images = { composes: async () => false, create: async () => (touched.push('image'), undefined) } as unknown as ImageClient;
  const retry = { instance: instanceWith([ROOT]), name: 'nightly', metadata: {}, images, requestId: 'req-1', projectId: 'p1', owner: 'p1', backup: { backupType: 'daily', rotation: 7 } };
  await expect(starter.start(retry)).rejects.toMatchObject({ status: 400, message: REFUSAL.badRequest.message });
  expect(touched).toEqual([]);
});

describe('a backup schedule for a volume-backed server', () => {
  it("is refused with createBackup's 400, after the 404 and the policy's 403, and no schedule is looked up or made", async () => {
    const instance = instanceWith([ROOT, DATA]);
    const path = `/v2.1/servers/${instance.uuid}/os-backup-schedule`;
    const open = await apiWith(instance);
    const narrow = await apiWith(instance, 'admin');
    try {
      expect((await open.call('PUT', path, 'stranger', schedule)).status).toBe(404);
      expect((await narrow.call('PUT', path, 'member', schedule)).status).toBe(403);
      expect(await open.call('PUT', path, 'member', schedule)).toEqual({ status: 400, body: REFUSAL });
      expect(await open.call('PUT', path, 'admin', schedule)).toEqual({ status: 400, body: REFUSAL });
      expect([open.stubs.scheduleCalls, narrow.stubs.scheduleCalls]).toEqual([[], []]);
    } finally {
      await Promise.all([open.app.close(), narrow.app.close()]);
    }
  });

  it('is made for an image-backed server with a data volume', async () => {
    const instance = instanceWith([DATA]);
    const { app, stubs, call } = await apiWith(instance);
    try {
      const answer = await call('PUT', `/v2.1/servers/${instance.uuid}/os-backup-schedule`, 'member', schedule);
      expect(answer).toMatchObject({ status: 201, body: { backup_schedule: { server_id: instance.uuid, backup_type: 'daily', rotation: 7 } } });
      expect(stubs.scheduleCalls).toEqual(['describe', 'create']);
    } finally {
      await app.close();
    }
  });
});
