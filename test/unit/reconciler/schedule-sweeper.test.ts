// The reconcile pass's schedule sweep: a schedule goes when its instance is not live, stays when the
// instance is live (also when it was stored after the live listing was read), and a schedule already
// gone is no error and no report; a volume-backed instance's is paused with Nova's refusal, once.
// Also the API's settings for schedules.
import pino from 'pino';
import { apiConfigFromEnv } from '../../../src/api/api-config';
import { VOLUME_BACKED_BACKUP_REFUSAL } from '../../../src/contract';
import { sweepBackupSchedules, type ScheduleSweepDeps } from '../../../src/reconciler';
import type { BackupScheduleListing } from '../../../src/temporal/backup-schedules';

const listing = (instanceUuid: string, paused = false): BackupScheduleListing => ({ scheduleId: `backup-${instanceUuid}`, instanceUuid, projectId: 'p', backup: null, spec: null, paused, note: null, timing: { intervalsSeconds: [], jitterSeconds: 0 }, nextRuns: [], recentRuns: [] });

function deps(o: { listed: string[]; live: string[]; storedSince?: string[]; alreadyGone?: string[]; volumeBacked?: string[]; pausedAlready?: string[] }) {
  const deleted: string[] = [];
  const paused: { uuid: string; note: string | undefined }[] = [];
  const instance = (uuid: string) => ({ uuid, volumes: (o.volumeBacked ?? []).includes(uuid) ? [{ volumeId: 'v', device: 'vda', root: true }] : [] });
  const d = {
    log: pino({ level: 'silent' }),
    store: {
      listAll: async () => o.live.map(instance),
      get: async (uuid: string) => ([...o.live, ...(o.storedSince ?? [])].includes(uuid) ? instance(uuid) : undefined),
    },
    schedules: {
      list: async () => o.listed.map((uuid) => listing(uuid, (o.pausedAlready ?? []).includes(uuid))),
      delete: async (uuid: string) => {
        deleted.push(uuid);
        return !(o.alreadyGone ?? []).includes(uuid);
      },
      pause: async (uuid: string, note?: string) => {
        paused.push({ uuid, note });
      },
    },
  } as unknown as ScheduleSweepDeps;
  return { d, deleted, paused };
}

it('deletes the schedules of instances that are not live, and only those', async () => {
  const { d, deleted, paused } = deps({ listed: ['a', 'b', 'c', 'd'], live: ['a'], storedSince: ['c'], alreadyGone: ['d'] });
  expect(await sweepBackupSchedules(d)).toEqual({ deleted: ['b'], paused: [] });
  expect(deleted).toEqual(['b', 'd']);
  expect(paused).toEqual([]);
});

it("pauses a live volume-backed instance's schedule with Nova's refusal as its note, and leaves one already paused", async () => {
  const { d, deleted, paused } = deps({ listed: ['a', 'v', 'w', 'n'], live: ['a', 'v', 'w'], storedSince: ['n'], volumeBacked: ['v', 'w', 'n'], pausedAlready: ['w'] });
  expect(await sweepBackupSchedules(d)).toEqual({ deleted: [], paused: ['v', 'n'] });
  expect(paused).toEqual([
    { uuid: 'v', note: VOLUME_BACKED_BACKUP_REFUSAL },
    { uuid: 'n', note: VOLUME_BACKED_BACKUP_REFUSAL },
  ]);
  expect(deleted).toEqual([]);
});

it('reads the API settings for schedules, and refuses a catch-up window under 10 s', () => {
  expect(apiConfigFromEnv({})).toMatchObject({ backupSchedulePolicy: 'project_member_or_admin', backupCatchupWindowSeconds: 3600 });
  expect(apiConfigFromEnv({ SNAP_POLICY_BACKUP_SCHEDULE: 'admin', SNAP_BACKUP_CATCHUP_WINDOW_S: '7200' })).toMatchObject({ backupSchedulePolicy: 'admin', backupCatchupWindowSeconds: 7200 });
  expect(() => apiConfigFromEnv({ SNAP_BACKUP_CATCHUP_WINDOW_S: '5' })).toThrow(/SNAP_BACKUP_CATCHUP_WINDOW_S/);
  expect(() => apiConfigFromEnv({ SNAP_POLICY_BACKUP_SCHEDULE: 'anyone' })).toThrow(/SNAP_POLICY_BACKUP_SCHEDULE/);
});
