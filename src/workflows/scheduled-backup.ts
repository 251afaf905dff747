// The action of an instance's backup schedule: the instance's snapshot run as a backup, under the
// instance's own workflow id, so that it never runs beside another snapshot of the instance (the
// API's createImage/createBackup, ops): while one runs, this run is skipped, as the schedule's own
// overlap policy (SKIP) skips a run while the previous scheduled one is still going.
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { ApplicationFailure, executeChild, ParentClosePolicy, patched } from '@temporalio/workflow';
import { backupScheduleId, CONTROL_TASK_QUEUE, ErrorTypes, ScheduledBackupInputSchema, snapshotWorkflowId, WORKFLOW_TYPE, type ScheduledBackupInput, type ScheduledBackupResult, type SnapshotInput, type SnapshotResult } from '../contract';
import { issueText } from '../config/validation';

export async function scheduledBackup(rawInput: ScheduledBackupInput): Promise<ScheduledBackupResult> {
  const parsed = ScheduledBackupInputSchema.safeParse(rawInput);
  if (!parsed.success) throw ApplicationFailure.nonRetryable(`invalid scheduled backup input: ${issueText(parsed.error)}`, ErrorTypes.InvalidInput);
  const { instanceUuid, backup } = parsed.data;
  // Workflow time is the history's, so the name replays the same.
  const name = `${backup.backupType || 'backup'} ${new Date().toISOString()}`.slice(0, 255);
  // The image names its schedule (backup_schedule_id); runs started before the tag replay without it.
  const tag = patched('backup-schedule-tag') ? { backupScheduleId: backupScheduleId(instanceUuid) } : {};
  const input: SnapshotInput = { instanceUuid, name, backup, ...tag };
  try {
    const result = await executeChild<(i: SnapshotInput) => Promise<SnapshotResult>>(WORKFLOW_TYPE, {
      args: [input],
      workflowId: snapshotWorkflowId(instanceUuid),
      taskQueue: CONTROL_TASK_QUEUE,
      // A snapshot holds a guest and its task_state: it finishes (or compensates) whatever happens to this run.
      parentClosePolicy: ParentClosePolicy.ABANDON,
    });
    return { started: true, imageId: result.imageId };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return { started: false, skippedReason: 'a snapshot of the instance is in progress' };
    throw err;
  }
}
