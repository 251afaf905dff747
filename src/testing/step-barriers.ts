// Test-only: the fault harness's barriers laid over a worker's activities from outside, so the
// production activities carry no test hooks. The worker factories apply these only when they are
// given a TestBarrier (SNAP_TEST_BARRIER_DIR set). Barrier names are the workflow's step names,
// which is what test/support/fault-matrix.ts holds.
import { withHeartbeat } from '../activities/activity-support';
import type { ControlActivities, HostActivities } from '../contract';
import type { TestBarrier } from './test-barrier';

/** Host activities hold before they start. */
export function holdHostActivitiesAtBarriers(activities: HostActivities, barrier: TestBarrier): HostActivities {
  const first = <A extends unknown[], R>(step: string, activity: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      // Heartbeats while held: a step held longer than its heartbeat timeout must not be timed out
      // and retried by the server, which would be a fault the test did not ask for.
      await withHeartbeat(() => barrier.hold(step));
      return activity(...args);
    };
  return {
    ...activities,
    getDomainPowerState: first('power_state', activities.getDomainPowerState),
    describeDomain: first('lookup_domain', activities.describeDomain),
    probeLiveSnapshot: first('choose_mode', activities.probeLiveSnapshot),
    prepareColdSnapshot: first('prepare_cold', activities.prepareColdSnapshot),
    extractSnapshot: first('extract', activities.extractSnapshot),
    restoreGuest: first('restore_guest', activities.restoreGuest),
    uploadSnapshot: first('upload', activities.uploadSnapshot),
    // The one-pass path's steps under the same names: the export is the extract, the stream the upload.
    openSnapshotExport: first('extract', activities.openSnapshotExport),
    streamSnapshot: first('upload', activities.streamSnapshot),
    closeSnapshotExport: first('close_export', activities.closeSnapshotExport),
  };
}

/** setTaskState holds at `task_state_<state>` after its write. */
export function holdControlActivitiesAtBarriers(activities: ControlActivities, barrier: TestBarrier): ControlActivities {
  return {
    ...activities,
    async setTaskState(input) {
      const instance = await activities.setTaskState(input);
      // After the write: a fault here is the hard case, the store committed but the activity
      // never reported it, so the retry must find its own write and accept it.
      await barrier.hold(`task_state_${input.taskState ?? 'none'}`);
      return instance;
    },
  };
}
