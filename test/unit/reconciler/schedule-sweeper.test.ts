// The reconcile pass's schedule sweep: a schedule goes when its instance is not live, stays when the
// instance is live (also when it was stored after the live listing was read), and a schedule already
// gone is no error and no report. Also the API's settings for schedules.
import pino from 'pino';
import { apiConfigFromEnv } from '../../../src/api/api-config';
import { sweepSchedulesOfDeletedInstances, type ScheduleSweepDeps } from '../../../src/reconciler';
import type { BackupScheduleListing } from '../../../src/temporal/backup-schedules';

const listing = (instanceUuid: string): BackupScheduleListing => ({ scheduleId: `backup-${instanceUuid}`, instanceUuid, projectId: 'p', backup: null, spec: null, paused: false, note: null, timing: { intervalsSeconds: [], jitterSeconds: 0 }, nextRuns: [], recentRuns: [] });

function deps(o: { listed: string[]; live: string[]; storedSince?: string[]; alreadyGone?: string[] }) {
  const deleted: string[] = [];
  const d = {
    log: pino({ level: 'silent' }),
    store: {
      listAll: async () => o.live.map((uuid) => ({ uuid })),
      get: async (uuid: string) => ([...o.live, ...(o.storedSince ?? [])].includes(uuid) ? { uuid } : undefined),
    },
    schedules: {
      list: async () => o.listed.map(listing),
      delete: async (uuid: string) => {
        deleted.push(uuid);
        return !(o.alreadyGone ?? []).includes(uuid);
      },
    },
  } as unknown as ScheduleSweepDeps;
  return { d, deleted };
}

it('deletes the schedules of instances that are not live, and only those', async () => {
  const { d, deleted } = deps({ listed: ['a', 'b', 'c', 'd'], live: ['a'], storedSince: ['c'], alreadyGone: ['d'] });
  expect(await sweepSchedulesOfDeletedInstances(d)).toEqual(['b']);
  expect(deleted).toEqual(['b', 'd']);
});

it('reads the API settings for schedules, and refuses a catch-up window under 10 s', () => {
  expect(apiConfigFromEnv({})).toMatchObject({ backupSchedulePolicy: 'project_member_or_admin', backupCatchupWindowSeconds: 3600 });
  expect(apiConfigFromEnv({ SNAP_POLICY_BACKUP_SCHEDULE: 'admin', SNAP_BACKUP_CATCHUP_WINDOW_S: '7200' })).toMatchObject({ backupSchedulePolicy: 'admin', backupCatchupWindowSeconds: 7200 });
  expect(() => apiConfigFromEnv({ SNAP_BACKUP_CATCHUP_WINDOW_S: '5' })).toThrow(/SNAP_BACKUP_CATCHUP_WINDOW_S/);
  expect(() => apiConfigFromEnv({ SNAP_POLICY_BACKUP_SCHEDULE: 'anyone' })).toThrow(/SNAP_POLICY_BACKUP_SCHEDULE/);
});
