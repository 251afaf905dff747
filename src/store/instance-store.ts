// Instance persistence with Nova's task_state compare-and-set. One class, one Kysely code path for
// SQLite and PostgreSQL; every state change is a single SQL statement so concurrent workers
// (Temporal activities on several hosts) cannot interleave a read and a write.
import { SnapshotChainStore } from './snapshot-chain-store';
import { z } from 'zod';
import {
  InventoryDomainSchema,
  POWER_STATE_NOSTATE,
  PowerStateSchema,
  TaskStateSchema,
  type InventoryDomain,
  type PowerState,
  type TaskState,
} from '../contract';
import { pickRootDisk, vmStateForPowerState } from './inventory-mapping';
import { instanceFromRow, type HostSummary, type Instance } from './instance-model';
import { openStoreDatabase, type StoreDb } from './store-connection';
import type { StoreConfigInput } from './store-config';
import { InstanceNotFound, InvalidStoreInput, UnexpectedDeletingTaskState, UnexpectedTaskState, type TaskStateCasError } from './store-errors';
import { migrateStoreToLatest } from './store-migrations';
import { InstanceActionStore } from './instance-action-store';
import { parseOrThrow as parseWith } from '../config/validation';

export type TaskStateCasResult = { ok: true; instance: Instance } | { ok: false; error: TaskStateCasError };

const UuidSchema = z.string().uuid();
const ExpectedTaskStatesSchema = z.array(TaskStateSchema).min(1, 'at least one expected task_state is required');

export interface GetInstanceOptions {
  /** Soft-deleted rows are invisible unless asked for, as in Nova's default read_deleted='no'. */
  includeDeleted?: boolean;
}

export class InstanceStore {
  /** Nova's instance actions and their events, in the same database. */
  readonly actions: InstanceActionStore;
  /** Each instance's snapshot chain (incremental snapshots), in the same database. */
  readonly chain: SnapshotChainStore;

  constructor(
    private readonly db: StoreDb,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.actions = new InstanceActionStore(db, now);
    this.chain = new SnapshotChainStore(db, now);
  }

  /** Opens the configured database and brings its schema up to date. */
  static async open(config: StoreConfigInput, now?: () => Date): Promise<InstanceStore> {
    const db = openStoreDatabase(config);
    try {
      await migrateStoreToLatest(db);
    } catch (err) {
      await db.destroy();
      throw err;
    }
    return new InstanceStore(db, now);
  }

  async close(): Promise<void> {
    await this.db.destroy();
  }

  async get(uuid: string, options: GetInstanceOptions = {}): Promise<Instance | undefined> {
    if (!UuidSchema.safeParse(uuid).success) return undefined;
    let q = this.db.selectFrom('instances').selectAll().where('uuid', '=', uuid);
    if (options.includeDeleted !== true) q = q.where('deleted', '=', 0);
    const row = await q.executeTakeFirst();
    return row === undefined ? undefined : instanceFromRow(row);
  }

  async getOrThrow(uuid: string, options: GetInstanceOptions = {}): Promise<Instance> {
    const found = await this.get(uuid, options);
    if (found === undefined) throw new InstanceNotFound(uuid);
    return found;
  }

  async listByProject(projectId: string): Promise<Instance[]> {
    const rows = await this.db
      .selectFrom('instances')
      .selectAll()
      .where('project_id', '=', projectId)
      .where('deleted', '=', 0)
      .orderBy('created_at')
      .orderBy('uuid')
      .execute();
    return rows.map(instanceFromRow);
  }

  async listByHost(host: string): Promise<Instance[]> {
    const rows = await this.db
      .selectFrom('instances')
      .selectAll()
      .where('host', '=', host)
      .where('deleted', '=', 0)
      .orderBy('created_at')
      .orderBy('uuid')
      .execute();
    return rows.map(instanceFromRow);
  }

  /** Every live instance of every project (the admin's all_tenants listing). */
  async listAll(): Promise<Instance[]> {
    const rows = await this.db.selectFrom('instances').selectAll().where('deleted', '=', 0).orderBy('created_at').orderBy('uuid').execute();
    return rows.map(instanceFromRow);
  }

  /** Hosts known from the live instances, with how many instances each runs and how many have a task in progress. */
  async listHosts(): Promise<HostSummary[]> {
    const rows = await this.db
      .selectFrom('instances')
      .select((eb) => ['host', eb.fn.countAll<number>().as('servers'), eb.fn.count<number>('task_state').as('busy')])
      .where('deleted', '=', 0)
      .groupBy('host')
      .orderBy('host')
      .execute();
    // PostgreSQL answers count() as a bigint string.
    return rows.map((r) => ({ host: r.host, servers: Number(r.servers), busy: Number(r.busy) }));
  }

  /**
   * Nova's instance.save(expected_task_state=[...]): sets task_state to `next` only if the current
   * value is one of `expected` (null allowed), atomically in one UPDATE. On a miss the row is read
   * once to explain why; that read is diagnostic only and never decides the outcome.
   */
  async compareAndSetTaskState(uuid: string, expected: readonly TaskState[], next: TaskState): Promise<TaskStateCasResult> {
    const expectedStates = parseOrThrow(ExpectedTaskStatesSchema, expected, 'expected task states');
    const nextState = parseOrThrow(TaskStateSchema, next, 'next task state');
    if (!UuidSchema.safeParse(uuid).success) return { ok: false, error: new InstanceNotFound(uuid) };

    const named = expectedStates.filter((s): s is NonNullable<TaskState> => s !== null);
    const acceptsNull = expectedStates.includes(null);
    const row = await this.db
      .updateTable('instances')
      .set({ task_state: nextState, updated_at: this.timestamp() })
      .where('uuid', '=', uuid)
      .where('deleted', '=', 0)
      .where((eb) => {
        const branches = [];
        if (named.length > 0) branches.push(eb('task_state', 'in', named));
        if (acceptsNull) branches.push(eb('task_state', 'is', null));
        return eb.or(branches);
      })
      .returningAll()
      .executeTakeFirst();
    if (row !== undefined) return { ok: true, instance: instanceFromRow(row) };

    const current = await this.get(uuid);
    if (current === undefined) return { ok: false, error: new InstanceNotFound(uuid) };
    if (current.taskState === 'deleting') return { ok: false, error: new UnexpectedDeletingTaskState(uuid, expectedStates) };
    return { ok: false, error: new UnexpectedTaskState(uuid, expectedStates, current.taskState) };
  }

  /**
   * CAS guarded by the row version too: task_state goes from `seen.taskState` to `next` only if
   * the row was not written since `seen.updatedAt`. The reconciler uses it so that a value it read
   * a while ago (a crashed API's image_snapshot_pending) cannot clobber the same value set again
   * by a new request in between (ABA). Returns whether the row changed.
   */
  async compareAndSetTaskStateUnchangedSince(uuid: string, seen: { taskState: NonNullable<TaskState>; updatedAt: string }, next: TaskState): Promise<boolean> {
    const seenState = parseOrThrow(TaskStateSchema, seen.taskState, 'seen task state');
    const nextState = parseOrThrow(TaskStateSchema, next, 'next task state');
    if (!UuidSchema.safeParse(uuid).success || seenState === null) return false;
    const row = await this.db
      .updateTable('instances')
      .set({ task_state: nextState, updated_at: this.timestamp() })
      .where('uuid', '=', uuid)
      .where('deleted', '=', 0)
      .where('task_state', '=', seenState)
      .where('updated_at', '=', seen.updatedAt)
      .returning('uuid')
      .executeTakeFirst();
    return row !== undefined;
  }

  /** Live instances whose task_state is one of `states` (the reconciler's candidates). */
  async listByTaskState(states: readonly NonNullable<TaskState>[]): Promise<Instance[]> {
    if (states.length === 0) return [];
    const rows = await this.db
      .selectFrom('instances')
      .selectAll()
      .where('deleted', '=', 0)
      .where('task_state', 'in', [...states])
      .orderBy('updated_at')
      .orderBy('uuid')
      .execute();
    return rows.map(instanceFromRow);
  }

  /** compareAndSetTaskState for callers that prefer exceptions. */
  async setTaskStateOrThrow(uuid: string, expected: readonly TaskState[], next: TaskState): Promise<Instance> {
    const result = await this.compareAndSetTaskState(uuid, expected, next);
    if (!result.ok) throw result.error;
    return result.instance;
  }

  /**
   * Records what a host reports. New domains are inserted with task_state null; known ones get
   * power_state, vm_state, host, name and root disk refreshed but never task_state (a snapshot
   * in flight owns it) nor project (an ownerless one may gain one) or image. Soft-deleted instances are not resurrected.
   * Returns the live instances as stored after the upsert.
   */
  async upsertFromInventory(domains: readonly InventoryDomain[]): Promise<Instance[]> {
    const parsed = parseOrThrow(z.array(InventoryDomainSchema), domains, 'inventory');
    const ts = this.timestamp();
    return this.db.transaction().execute(async (trx) => {
      const out: Instance[] = [];
      for (const d of parsed) {
        const root = pickRootDisk(d.disks);
        const observedVmState = vmStateForPowerState(d.powerState);
        const row = await trx
          .insertInto('instances')
          .values({
            uuid: d.uuid,
            name: d.name,
            host: d.host,
            project_id: d.projectId,
            vm_state: observedVmState ?? 'error',
            power_state: d.powerState,
            task_state: null,
            image_ref: d.imageRef ?? null,
            root_disk_path: root?.path ?? null,
            root_disk_format: root?.format ?? null,
            created_at: ts,
            updated_at: ts,
            deleted_at: null,
            user_id: d.userId ?? null,
            flavor: d.flavor == null ? null : JSON.stringify(d.flavor),
            volumes: d.volumes === undefined ? null : JSON.stringify(d.volumes),
          })
          .onConflict((oc) =>
            oc
              .column('uuid')
              .doUpdateSet((eb) => ({
                name: eb.ref('excluded.name'),
                host: eb.ref('excluded.host'),
                power_state: eb.ref('excluded.power_state'),
                // NOSTATE says nothing about the VM, so the stored vm_state stands.
                vm_state: observedVmState === undefined ? eb.ref('instances.vm_state') : eb.ref('excluded.vm_state'),
                root_disk_path: eb.ref('excluded.root_disk_path'),
                root_disk_format: eb.ref('excluded.root_disk_format'),
                // A resize changes the flavor; a report without Nova metadata keeps the user known.
                flavor: eb.ref('excluded.flavor'),
                // a detach reports []; a host that reports no volumes at all keeps what is known
                volumes: eb.fn.coalesce('excluded.volumes', 'instances.volumes'),
                user_id: eb.fn.coalesce('excluded.user_id', 'instances.user_id'),
                // An owner, once known, is never rewritten; an ownerless instance takes one when the host reports it.
                project_id: eb.fn.coalesce('instances.project_id', 'excluded.project_id'),
                updated_at: eb.ref('excluded.updated_at'),
              }))
              .where('instances.deleted', '=', 0),
          )
          .returningAll()
          .executeTakeFirst();
        if (row !== undefined) out.push(instanceFromRow(row));
      }
      return out;
    });
  }

  /** Nova's delete path: task_state 'deleting' preempts any task, so an in-flight snapshot's next CAS fails with UnexpectedDeletingTaskState. */
  async markDeleting(uuid: string): Promise<Instance> {
    return this.updateLive(uuid, { task_state: 'deleting' });
  }

  /** Terminal soft delete, mirroring Nova's _delete_instance field updates. */
  async markDeleted(uuid: string): Promise<Instance> {
    const ts = this.timestamp();
    return this.updateLive(uuid, {
      vm_state: 'deleted',
      task_state: null,
      power_state: POWER_STATE_NOSTATE,
      deleted: 1,
      deleted_at: ts,
    });
  }

  async setPowerState(uuid: string, powerState: PowerState): Promise<Instance> {
    return this.updateLive(uuid, { power_state: parseOrThrow(PowerStateSchema, powerState, 'power state') });
  }

  private async updateLive(
    uuid: string,
    changes: { task_state?: TaskState; vm_state?: string; power_state?: number; deleted?: number; deleted_at?: string },
  ): Promise<Instance> {
    if (!UuidSchema.safeParse(uuid).success) throw new InstanceNotFound(uuid);
    const row = await this.db
      .updateTable('instances')
      .set({ ...changes, updated_at: this.timestamp() })
      .where('uuid', '=', uuid)
      .where('deleted', '=', 0)
      .returningAll()
      .executeTakeFirst();
    if (row === undefined) throw new InstanceNotFound(uuid);
    return instanceFromRow(row);
  }

  private timestamp(): string {
    return this.now().toISOString();
  }
}

function parseOrThrow<T>(schema: z.ZodType<T, z.ZodTypeDef, unknown>, value: unknown, what: string): T {
  return parseWith(schema, value, (issues) => new InvalidStoreInput(`invalid ${what}: ${issues}`));
}
