// Nova's instance actions (os-instance-actions): the API records each createImage request as an
// action with its request id, user and project; the workflow's notifications record the
// `compute_snapshot_instance` event under it, started and finished with Success or Error (and the
// error text, Nova's traceback, for admins). Every write is one statement, safe from any worker.
import type { Selectable } from 'kysely';
import type { StoreDb } from './store-connection';
import type { InstanceActionsTable } from './store-schema';

export const SNAPSHOT_EVENT = 'compute_snapshot_instance';
/** Nova's wrap_instance_event(prefix='compute') around backup_instance. */
export const BACKUP_EVENT = 'compute_backup_instance';

/** The event a workflow records under its action: createBackup's is the backup event. */
function eventOf(action: Pick<InstanceAction, 'action'>): string {
  return action.action === 'createBackup' ? BACKUP_EVENT : SNAPSHOT_EVENT;
}

export interface InstanceActionEvent {
  event: string;
  host: string | null;
  startTime: string;
  finishTime: string | null;
  result: 'Success' | 'Error' | null;
  traceback: string | null;
}

export interface InstanceAction {
  requestId: string;
  instanceUuid: string;
  action: string;
  imageId: string | null;
  userId: string | null;
  projectId: string;
  startTime: string;
  finishTime: string | null;
  message: string | null;
  updatedAt: string;
}

export interface NewInstanceAction {
  requestId: string;
  instanceUuid: string;
  /** Nova's instance_actions.CREATE_IMAGE and BACKUP */
  action: 'createImage' | 'createBackup';
  imageId: string;
  userId?: string;
  projectId: string;
}

export class InstanceActionStore {
  constructor(
    private readonly db: StoreDb,
    private readonly now: () => Date,
  ) {}

  /** Takes back an action whose request was refused after all (the workflow never started). */
  async remove(requestId: string): Promise<void> {
    await this.db.deleteFrom('instance_action_events').where('request_id', '=', requestId).execute();
    await this.db.deleteFrom('instance_actions').where('request_id', '=', requestId).execute();
  }

  async record(action: NewInstanceAction): Promise<void> {
    const at = this.now().toISOString();
    await this.db
      .insertInto('instance_actions')
      .values({ request_id: action.requestId, instance_uuid: action.instanceUuid, action: action.action, image_id: action.imageId, user_id: action.userId ?? null, project_id: action.projectId, start_time: at, finish_time: null, message: null, updated_at: at })
      .onConflict((c) => c.column('request_id').doNothing())
      .execute();
  }

  /** The snapshot event begins; a repeat (an activity retried) keeps the first start. */
  async startSnapshotEvent(imageId: string, host: string | null): Promise<boolean> {
    const action = await this.byImage(imageId);
    if (action === undefined) return false;
    await this.db
      .insertInto('instance_action_events')
      .values({ request_id: action.requestId, event: eventOf(action), host, start_time: this.now().toISOString(), finish_time: null, result: null, traceback: null })
      .onConflict((c) => c.columns(['request_id', 'event']).doNothing())
      .execute();
    return true;
  }

  /** The snapshot event and its action end; an error marks the action as Nova does (message 'Error'). */
  async finishSnapshotEvent(imageId: string, outcome: { result: 'Success' } | { result: 'Error'; traceback: string }): Promise<boolean> {
    const action = await this.byImage(imageId);
    if (action === undefined) return false;
    const at = this.now().toISOString();
    await this.startSnapshotEvent(imageId, null);
    await this.db
      .updateTable('instance_action_events')
      .set({ finish_time: at, result: outcome.result, traceback: outcome.result === 'Error' ? outcome.traceback.slice(0, 65_535) : null })
      .where('request_id', '=', action.requestId)
      .where('event', '=', eventOf(action))
      .execute();
    await this.db
      .updateTable('instance_actions')
      .set({ finish_time: at, updated_at: at, ...(outcome.result === 'Error' ? { message: 'Error' } : {}) })
      .where('request_id', '=', action.requestId)
      .execute();
    return true;
  }

  /** Newest first, as Nova lists them. */
  async list(instanceUuid: string): Promise<InstanceAction[]> {
    const rows = await this.db.selectFrom('instance_actions').selectAll().where('instance_uuid', '=', instanceUuid).orderBy('start_time', 'desc').orderBy('request_id', 'desc').execute();
    return rows.map(actionFromRow);
  }

  async get(instanceUuid: string, requestId: string): Promise<{ action: InstanceAction; events: InstanceActionEvent[] } | undefined> {
    const row = await this.db.selectFrom('instance_actions').selectAll().where('instance_uuid', '=', instanceUuid).where('request_id', '=', requestId).executeTakeFirst();
    if (row === undefined) return undefined;
    const events = await this.db.selectFrom('instance_action_events').selectAll().where('request_id', '=', requestId).orderBy('start_time').execute();
    return {
      action: actionFromRow(row),
      events: events.map((e) => ({ event: e.event, host: e.host, startTime: e.start_time, finishTime: e.finish_time, result: e.result === 'Success' || e.result === 'Error' ? e.result : null, traceback: e.traceback })),
    };
  }

  private async byImage(imageId: string): Promise<InstanceAction | undefined> {
    const row = await this.db.selectFrom('instance_actions').selectAll().where('image_id', '=', imageId).orderBy('start_time', 'desc').executeTakeFirst();
    return row === undefined ? undefined : actionFromRow(row);
  }
}

function actionFromRow(r: Selectable<InstanceActionsTable>): InstanceAction {
  return {
    requestId: r.request_id,
    instanceUuid: r.instance_uuid,
    action: r.action,
    imageId: r.image_id,
    userId: r.user_id,
    projectId: r.project_id,
    startTime: r.start_time,
    finishTime: r.finish_time,
    message: r.message,
    updatedAt: r.updated_at,
  };
}
