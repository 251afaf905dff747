// Nova's start-up clean-up of interrupted snapshots (ComputeManager._init_instance resets a
// snapshot task_state to None; Nova leaves the image queued forever, we delete it), run on the
// control side for whatever a crash left with no workflow to finish or compensate it: an API
// process killed between creating the image / setting task_state and starting the workflow, a
// workflow terminated by an operator, a compensation that gave up.
//
// It must never touch a snapshot that is still running, so every candidate passes three gates:
//  1. the grace period: the row / image has not changed for `graceMs` (the API creates the image
//     and sets task_state a moment before it starts the workflow);
//  2. visibility: no open snapshotInstance run names the instance or the image;
//  3. describe `snapshot-<uuid>` by id right before acting (visibility lags; describe does not).
// and then acts with a CAS on what it saw (task_state and updated_at unchanged), or deletes an
// image only if it is still not active. Safe to run on every control node at once.
import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import { ImageNotFound, type Image, type ImageClient } from '../images/client';
import type { Instance, InstanceStore } from '../store';
import { SNAPSHOT_TASK_STATES } from '../contract';
import { listOpenSnapshots, snapshotRunIsOpen, type OpenSnapshotIndex } from './open-snapshots';
import { sweepBackupSchedules, type ScheduleSweepDeps } from './schedule-sweeper';

/** Image statuses that mean "not finished": an interrupted snapshot leaves one of these. */
export const UNFINISHED_IMAGE_STATUSES: ReadonlySet<string> = new Set(['queued', 'saving', 'uploading', 'killed']);

export interface ReconcilerDeps {
  client: Client;
  store: InstanceStore;
  /** acts with an admin / service token: it must see every project's images */
  images: ImageClient;
  graceMs: number;
  log: Logger;
  now?: () => number;
  /** when given, each pass also deletes the backup schedules of deleted instances and pauses those of volume-backed ones (schedule-sweeper.ts) */
  schedules?: ScheduleSweepDeps['schedules'];
}

export type SkipReason = 'grace' | 'open_workflow' | 'changed' | 'active' | 'gone';

export interface ReconcileReport {
  /** instances whose task_state was put back to None, with the state they had */
  resetInstances: { uuid: string; taskState: string }[];
  /** images deleted, with the status they had */
  deletedImages: { id: string; status: string; instanceUuid: string | null }[];
  skipped: { kind: 'instance' | 'image'; id: string; reason: SkipReason }[];
  /** instances whose backup schedule was deleted because the instance was */
  deletedSchedules: string[];
  /** volume-backed instances whose backup schedule this pass paused */
  pausedSchedules: string[];
  durationMs: number;
}

export class SnapshotReconciler {
  private readonly now: () => number;

  constructor(private readonly deps: ReconcilerDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** One pass. Failures on one candidate are logged and do not stop the others. */
  async runOnce(): Promise<ReconcileReport> {
    const started = this.now();
    const report: ReconcileReport = { resetInstances: [], deletedImages: [], skipped: [], deletedSchedules: [], pausedSchedules: [], durationMs: 0 };
    const { schedules } = this.deps;
    // A sweep that fails leaves the snapshot clean-up below to run; the next pass sweeps again.
    if (schedules !== undefined) {
      const sweep = await sweepBackupSchedules({ schedules, store: this.deps.store, log: this.deps.log }).catch((err: unknown) => {
        this.deps.log.warn({ err }, 'reconciler: could not sweep the backup schedules; the next pass retries');
        return { deleted: [], paused: [] };
      });
      report.deletedSchedules = sweep.deleted;
      report.pausedSchedules = sweep.paused;
    }
    // Candidates are read BEFORE the visibility listing: a run started after the listing was
    // taken set its task_state / image before it started, i.e. is younger than the grace period
    // or is caught by the describe of gate 3.
    const instances = await this.deps.store.listByTaskState(SNAPSHOT_TASK_STATES);
    const images = (await this.deps.images.list()).filter(isUnfinishedSnapshotImage);
    if (instances.length === 0 && images.length === 0) return this.finish(report, started);
    const open = await listOpenSnapshots(this.deps.client);

    for (const instance of instances) await this.guard('instance', instance.uuid, () => this.reconcileInstance(instance, open, report));
    for (const image of images) await this.guard('image', image.id, () => this.reconcileImage(image, open, report));
    return this.finish(report, started);
  }

  private async reconcileInstance(instance: Instance, open: OpenSnapshotIndex, report: ReconcileReport): Promise<void> {
    const skip = (reason: SkipReason): void => void report.skipped.push({ kind: 'instance', id: instance.uuid, reason });
    const taskState = instance.taskState;
    if (taskState === null || taskState === 'deleting') return;
    if (!this.graceElapsed(instance.updatedAt)) return skip('grace');
    if (open.instanceUuids.has(instance.uuid) || (await snapshotRunIsOpen(this.deps.client, instance.uuid))) return skip('open_workflow');
    const changed = await this.deps.store.compareAndSetTaskStateUnchangedSince(instance.uuid, { taskState, updatedAt: instance.updatedAt }, null);
    if (!changed) return skip('changed');
    report.resetInstances.push({ uuid: instance.uuid, taskState });
    this.deps.log.warn({ instance_uuid: instance.uuid, task_state: taskState }, 'reconciler: reset the task_state of an interrupted snapshot with no open workflow');
  }

  private async reconcileImage(image: Image, open: OpenSnapshotIndex, report: ReconcileReport): Promise<void> {
    const instanceUuid = image.properties.instance_uuid ?? null;
    const skip = (reason: SkipReason): void => void report.skipped.push({ kind: 'image', id: image.id, reason });
    if (!this.graceElapsed(image.updated_at) || !this.graceElapsed(image.created_at)) return skip('grace');
    // An open run of the instance may own this image before it upserted ImageId (runs started
    // without an image create it in their first activity), so any open run of the instance protects it.
    if (open.imageIds.has(image.id)) return skip('open_workflow');
    if (instanceUuid !== null && (open.instanceUuids.has(instanceUuid) || (await snapshotRunIsOpen(this.deps.client, instanceUuid)))) return skip('open_workflow');
    let current: Image;
    try {
      current = await this.deps.images.get(image.id);
    } catch (err) {
      if (err instanceof ImageNotFound) return skip('gone');
      throw err;
    }
    if (current.status === 'active') return skip('active');
    // Written again since the listing (an upload started): let the next pass look at it afresh.
    if (current.updated_at !== image.updated_at) return skip('changed');
    try {
      await this.deps.images.delete(image.id);
    } catch (err) {
      if (err instanceof ImageNotFound) return skip('gone');
      throw err;
    }
    report.deletedImages.push({ id: image.id, status: current.status, instanceUuid });
    this.deps.log.warn({ image_id: image.id, status: current.status, instance_uuid: instanceUuid }, 'reconciler: deleted the unfinished image of an interrupted snapshot');
  }

  private graceElapsed(timestamp: string): boolean {
    const at = Date.parse(timestamp);
    // An unparsable timestamp is treated as "just now": never act on what we cannot date.
    return Number.isFinite(at) && this.now() - at >= this.deps.graceMs;
  }

  private async guard(kind: 'instance' | 'image', id: string, run: () => Promise<void>): Promise<void> {
    try {
      await run();
    } catch (err) {
      this.deps.log.error({ err, kind, id }, 'reconciler: candidate left as is after an error; the next pass retries');
    }
  }

  private finish(report: ReconcileReport, started: number): ReconcileReport {
    report.durationMs = this.now() - started;
    return report;
  }
}

export function isUnfinishedSnapshotImage(image: Image): boolean {
  return image.properties.image_type === 'snapshot' && UNFINISHED_IMAGE_STATUSES.has(image.status);
}
