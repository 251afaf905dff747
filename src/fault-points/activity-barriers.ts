// The fault harness's barriers laid over a worker's activities from outside, so the activities
// themselves carry no fault hooks. The worker factories apply these only when they are given a
// StepBarrier (SNAP_TEST_BARRIER_DIR set); unset, nothing here runs. Barrier names are the
// workflow's step names, which is what test/support/fault-matrix.ts holds.
import { withHeartbeat } from '../activities/activity-support';
import type { ControlActivities, HostActivities } from '../contract';
import type { CallOptions, Domain, Libvirt } from '../libvirt';
import type { LibvirtSession } from '../host/libvirt-session';
import type { StepBarrier } from './step-barrier';

/** Host activities hold before they start. */
export function holdHostActivitiesAtBarriers(activities: HostActivities, barrier: StepBarrier): HostActivities {
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
    // The close and the retention in one step starts as the close does (retain_checkpoints holds inside it).
    closeExportAndRetain: first('close_export', activities.closeExportAndRetain),
    // Volume-backed: before the freeze and the create calls, and after them (the snapshots asked
    // for, the guest thawed) before the attempt reports: a worker killed there leaves them unreported.
    snapshotVolumes: first('snapshot_volumes', after('snapshot_volumes_done', activities.snapshotVolumes, barrier)),
  };
}

/**
 * The activities' libvirt calls that are a step of their own inside one activity: `resume_guest`
 * holds every resume of a guest, so a test lands between a cold run's restart of its guest (paused,
 * from the save) and its resume, which one activity does back to back; `retain_checkpoints` holds
 * the retention's listing of a domain's checkpoints, so a test lands between the close of a run's
 * export and its retention, which closeExportAndRetain does back to back.
 */
export function holdLibvirtAtBarriers(session: LibvirtSession, barrier: StepBarrier): LibvirtSession {
  return new Proxy(session, {
    get(target, prop) {
      if (prop === 'client') return async () => holdLibvirtSteps(await target.client(), barrier);
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

function holdLibvirtSteps(client: Libvirt, barrier: StepBarrier): Libvirt {
  return new Proxy(client, {
    get(target, prop) {
      if (prop === 'domainResume') {
        return async (dom: Domain, opts?: CallOptions) => {
          await barrier.hold('resume_guest');
          return target.domainResume(dom, opts);
        };
      }
      if (prop === 'checkpoints') return holdCheckpointListing(target.checkpoints, barrier);
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

function holdCheckpointListing(checkpoints: Libvirt['checkpoints'], barrier: StepBarrier): Libvirt['checkpoints'] {
  return new Proxy(checkpoints, {
    get(target, prop) {
      if (prop === 'listAll') {
        return async (...args: Parameters<Libvirt['checkpoints']['listAll']>) => {
          // Heartbeats while held: closeExportAndRetain has no heartbeat of its own.
          await withHeartbeat(() => barrier.hold('retain_checkpoints'));
          return target.listAll(...args);
        };
      }
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

function after<A extends unknown[], R>(step: string, activity: (...args: A) => Promise<R>, barrier: StepBarrier) {
  return async (...args: A): Promise<R> => {
    const result = await activity(...args);
    await withHeartbeat(() => barrier.hold(step));
    return result;
  };
}

/**
 * setTaskState holds at `task_state_<state>` after its write; the volume-backed wait and image
 * step before they start (`await_volume_snapshots`, `complete_image`).
 */
export function holdControlActivitiesAtBarriers(activities: ControlActivities, barrier: StepBarrier): ControlActivities {
  return {
    ...activities,
    async awaitVolumeSnapshots(input) {
      await withHeartbeat(() => barrier.hold('await_volume_snapshots'));
      return activities.awaitVolumeSnapshots(input);
    },
    async completeVolumeBackedImage(input) {
      await barrier.hold('complete_image');
      return activities.completeVolumeBackedImage(input);
    },
    async setTaskState(input) {
      const instance = await activities.setTaskState(input);
      // After the write: a fault here is the hard case, the store committed but the activity
      // never reported it, so the retry must find its own write and accept it.
      await barrier.hold(`task_state_${input.taskState ?? 'none'}`);
      return instance;
    },
  };
}
