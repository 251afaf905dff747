// The instance-store behaviour every backing database must show. Registered by one test file per
// dialect (SQLite here in unit, PostgreSQL in integration) so both run the identical assertions.
import fc from 'fast-check';
import { describeInstanceActionCases } from './instance-actions-cases';
import { sql } from 'kysely';
import { randomUUID } from 'node:crypto';
import {
  appliedStoreMigrations,
  InstanceNotFound,
  InstanceStore,
  InvalidStoreInput,
  migrateStoreToEmpty,
  migrateStoreToLatest,
  migrateStoreTo,
  openStoreDatabase,
  STORE_MIGRATION_NAMES,
  UnexpectedDeletingTaskState,
  UnexpectedTaskState,
  type StoreConfigInput,
  type StoreDb,
} from '../../../src/store';
import {
  POWER_STATE_NOSTATE,
  POWER_STATE_PAUSED,
  POWER_STATE_RUNNING,
  POWER_STATE_SHUTDOWN,
  TASK_STATES,
  type InventoryDomain,
  type TaskState,
} from '../../../src/contract';

export interface StoreContractTarget {
  /** Called once before the suite; returns a config pointing at an empty database. */
  setUp(): Promise<StoreConfigInput>;
  tearDown(): Promise<void>;
}

const ALL_TASK_STATES: readonly TaskState[] = [null, ...TASK_STATES];

export function describeInstanceStoreContract(dialect: string, target: StoreContractTarget): void {
  describe(`InstanceStore on ${dialect}`, () => {
    let config: StoreConfigInput;
    let db: StoreDb;
    let store: InstanceStore;
    let clockMs = Date.parse('2030-01-01T00:00:00.000Z');
    const clock = (): Date => new Date(clockMs);

    beforeAll(async () => {
      config = await target.setUp();
      db = openStoreDatabase(config);
      await migrateStoreToLatest(db);
      store = new InstanceStore(db, clock);
    });

    afterAll(async () => {
      await db?.destroy();
      await target.tearDown();
    });

    beforeEach(async () => {
      await db.deleteFrom('instances').execute();
      clockMs += 60_000;
    });

    function domain(overrides: Partial<InventoryDomain> = {}): InventoryDomain {
      return {
        uuid: randomUUID(),
        name: 'instance-0000001',
        host: 'compute-1',
        projectId: 'project-a',
        powerState: POWER_STATE_RUNNING,
        disks: [{ path: 'vms/one/disk.qcow2', format: 'qcow2', target: 'vda' }],
        imageRef: 'base-image',
        ...overrides,
      };
    }

    async function seed(taskState: TaskState, overrides: Partial<InventoryDomain> = {}): Promise<string> {
      const [inst] = await store.upsertFromInventory([domain(overrides)]);
      if (inst === undefined) throw new Error('seed failed');
      if (taskState === 'deleting') await store.markDeleting(inst.uuid);
      else if (taskState !== null) await store.setTaskStateOrThrow(inst.uuid, [null], taskState);
      return inst.uuid;
    }

    describeInstanceActionCases(() => ({ store, tick: () => (clockMs += 1000) }));

    describe('migrations', () => {
      it('records every in-code migration and re-running is a no-op', async () => {
        expect(await appliedStoreMigrations(db)).toEqual([...STORE_MIGRATION_NAMES]);
        await migrateStoreToLatest(db);
        expect(await appliedStoreMigrations(db)).toEqual([...STORE_MIGRATION_NAMES]);
      });

      it('migrates down to nothing and back up again', async () => {
        await migrateStoreToEmpty(db);
        expect(await appliedStoreMigrations(db)).toEqual([]);
        // Matched by message, not class: better-sqlite3's native part keeps the SqliteError class of the
        // first jest sandbox that loaded it, so in later test files it is not an Error of this realm.
        await expect(sql`select count(*) from instances`.execute(db)).rejects.toHaveProperty('message', expect.stringMatching(/no such table|does not exist/));
        await migrateStoreToLatest(db);
        expect(await store.listByHost('compute-1')).toEqual([]);
      });

      it("takes back the old default project 'demo' from stored rows; the next report gives back the one a domain names", async () => {
        const keep = await seed(null, { projectId: 'project-a' });
        await migrateStoreTo(db, '0004_snapshot_chain');
        const ts = new Date(clockMs).toISOString();
        const defaulted = randomUUID();
        await sql`insert into instances (uuid, name, host, project_id, vm_state, power_state, created_at, updated_at, deleted) values (${defaulted}, 'old', 'compute-1', 'demo', 'active', 1, ${ts}, ${ts}, 0)`.execute(db);
        await migrateStoreToLatest(db);
        expect((await store.getOrThrow(keep)).projectId).toBe('project-a');
        expect((await store.getOrThrow(defaulted)).projectId).toBeNull();
        expect(await store.listByProject('demo')).toEqual([]);
        const [reported] = await store.upsertFromInventory([domain({ uuid: defaulted, projectId: 'demo' })]);
        expect(reported?.projectId).toBe('demo');
        // and down again: an ownerless row gets the old default back
        await store.upsertFromInventory([domain({ projectId: null })]);
        await migrateStoreTo(db, '0004_snapshot_chain');
        const rows = await sql<{ project_id: string }>`select project_id from instances`.execute(db);
        expect(rows.rows.map((r) => r.project_id).sort()).toEqual(['demo', 'demo', 'project-a']);
        await migrateStoreToLatest(db);
      });

      it('InstanceStore.open migrates a fresh handle and sees existing rows', async () => {
        const uuid = await seed(null);
        const other = await InstanceStore.open(config);
        try {
          expect((await other.getOrThrow(uuid)).uuid).toBe(uuid);
        } finally {
          await other.close();
        }
      });
    });

    describe('compareAndSetTaskState', () => {
      it('moves from the single expected state', async () => {
        const uuid = await seed('image_snapshot_pending');
        const r = await store.compareAndSetTaskState(uuid, ['image_snapshot_pending'], 'image_snapshot');
        expect(r.ok).toBe(true);
        expect((await store.getOrThrow(uuid)).taskState).toBe('image_snapshot');
      });

      it('matches any member of the expected list, including null', async () => {
        const fromNull = await seed(null);
        const fromUploading = await seed('image_uploading');
        const expected: TaskState[] = [null, 'image_uploading'];
        expect((await store.compareAndSetTaskState(fromNull, expected, 'image_snapshot_pending')).ok).toBe(true);
        expect((await store.compareAndSetTaskState(fromUploading, expected, null)).ok).toBe(true);
        expect((await store.getOrThrow(fromNull)).taskState).toBe('image_snapshot_pending');
        expect((await store.getOrThrow(fromUploading)).taskState).toBeNull();
      });

      it('returns the updated instance with a fresh updated_at', async () => {
        const uuid = await seed(null);
        clockMs += 1000;
        const r = await store.compareAndSetTaskState(uuid, [null], 'image_snapshot_pending');
        if (!r.ok) throw r.error;
        expect(r.instance.taskState).toBe('image_snapshot_pending');
        expect(r.instance.updatedAt).toBe(new Date(clockMs).toISOString());
      });

      it('reports the actual state on a miss and changes nothing', async () => {
        const uuid = await seed('image_uploading');
        const before = await store.getOrThrow(uuid);
        clockMs += 1000;
        const r = await store.compareAndSetTaskState(uuid, ['image_snapshot', null], 'image_pending_upload');
        expect(r.ok).toBe(false);
        if (r.ok) return;
        expect(r.error).toBeInstanceOf(UnexpectedTaskState);
        expect(r.error).not.toBeInstanceOf(UnexpectedDeletingTaskState);
        expect((r.error as UnexpectedTaskState).actual).toBe('image_uploading');
        expect((r.error as UnexpectedTaskState).expected).toEqual(['image_snapshot', null]);
        expect(await store.getOrThrow(uuid)).toEqual(before);
      });

      it('treats null as unexpected unless listed', async () => {
        const uuid = await seed(null);
        const r = await store.compareAndSetTaskState(uuid, ['image_snapshot'], 'image_pending_upload');
        expect(r.ok).toBe(false);
        if (!r.ok) expect((r.error as UnexpectedTaskState).actual).toBeNull();
        expect((await store.getOrThrow(uuid)).taskState).toBeNull();
      });

      it('reports UnexpectedDeletingTaskState when the instance is being deleted', async () => {
        const uuid = await seed('deleting');
        const r = await store.compareAndSetTaskState(uuid, ['image_snapshot'], 'image_pending_upload');
        expect(r.ok).toBe(false);
        if (r.ok) return;
        expect(r.error).toBeInstanceOf(UnexpectedDeletingTaskState);
        expect(r.error).toBeInstanceOf(UnexpectedTaskState);
        expect((await store.getOrThrow(uuid)).taskState).toBe('deleting');
      });

      it('reports InstanceNotFound for unknown, malformed and soft-deleted uuids', async () => {
        const deleted = await seed(null);
        await store.markDeleted(deleted);
        for (const uuid of [randomUUID(), 'not-a-uuid', deleted]) {
          const r = await store.compareAndSetTaskState(uuid, [null], 'image_snapshot_pending');
          expect(r.ok).toBe(false);
          if (!r.ok) expect(r.error).toBeInstanceOf(InstanceNotFound);
        }
        expect((await store.getOrThrow(deleted, { includeDeleted: true })).taskState).toBeNull();
      });

      it('rejects an empty expected list and unknown states as programming errors', async () => {
        const uuid = await seed(null);
        await expect(store.compareAndSetTaskState(uuid, [], 'image_snapshot')).rejects.toBeInstanceOf(InvalidStoreInput);
        await expect(
          store.compareAndSetTaskState(uuid, [null], 'rebooting' as unknown as TaskState),
        ).rejects.toBeInstanceOf(InvalidStoreInput);
        expect((await store.getOrThrow(uuid)).taskState).toBeNull();
      });

      it('setTaskStateOrThrow throws the typed error', async () => {
        const uuid = await seed('image_snapshot');
        await expect(store.setTaskStateOrThrow(uuid, [null], 'image_snapshot_pending')).rejects.toBeInstanceOf(UnexpectedTaskState);
        await expect(store.setTaskStateOrThrow(randomUUID(), [null], 'image_snapshot')).rejects.toBeInstanceOf(InstanceNotFound);
        expect((await store.setTaskStateOrThrow(uuid, ['image_snapshot'], 'image_pending_upload')).taskState).toBe('image_pending_upload');
      });

      it('lets exactly one of 50 concurrent attempts from the same state win', async () => {
        const uuid = await seed('image_snapshot_pending');
        const results = await Promise.all(
          Array.from({ length: 50 }, () => store.compareAndSetTaskState(uuid, ['image_snapshot_pending'], 'image_snapshot')),
        );
        expect(results.filter((r) => r.ok)).toHaveLength(1);
        const losers = results.filter((r) => !r.ok);
        expect(losers).toHaveLength(49);
        for (const r of losers) {
          if (!r.ok) expect((r.error as UnexpectedTaskState).actual).toBe('image_snapshot');
        }
      });

      it('lets exactly one win when the attempts come from separate connections', async () => {
        const uuid = await seed(null);
        const handles = await Promise.all(Array.from({ length: 5 }, () => InstanceStore.open(config)));
        try {
          const results = await Promise.all(
            handles.flatMap((h) => Array.from({ length: 10 }, () => h.compareAndSetTaskState(uuid, [null], 'image_snapshot_pending'))),
          );
          expect(results.filter((r) => r.ok)).toHaveLength(1);
        } finally {
          await Promise.all(handles.map((h) => h.close()));
        }
      });

      it('succeeds exactly when the current state is expected (property)', async () => {
        const uuid = await seed(null);
        const stateArb = fc.constantFrom(...ALL_TASK_STATES);
        await fc.assert(
          fc.asyncProperty(stateArb, fc.uniqueArray(stateArb, { minLength: 1 }), stateArb, async (current, expected, next) => {
            await db.updateTable('instances').set({ task_state: current }).where('uuid', '=', uuid).execute();
            const r = await store.compareAndSetTaskState(uuid, expected, next);
            const stored = (await store.getOrThrow(uuid)).taskState;
            if (expected.includes(current)) {
              expect(r.ok).toBe(true);
              expect(stored).toBe(next);
            } else {
              expect(r.ok).toBe(false);
              expect(stored).toBe(current);
              if (!r.ok) expect(r.error instanceof UnexpectedDeletingTaskState).toBe(current === 'deleting');
            }
          }),
          { numRuns: 60 },
        );
      });
    });

    describe('upsertFromInventory', () => {
      it('inserts new domains with vm_state derived from power state and no task', async () => {
        const d = domain({ powerState: POWER_STATE_SHUTDOWN });
        const [inst] = await store.upsertFromInventory([d]);
        expect(inst).toMatchObject({
          uuid: d.uuid,
          name: d.name,
          host: 'compute-1',
          projectId: 'project-a',
          vmState: 'stopped',
          powerState: POWER_STATE_SHUTDOWN,
          taskState: null,
          imageRef: 'base-image',
          rootDisk: { path: 'vms/one/disk.qcow2', format: 'qcow2' },
          deleted: false,
        });
      });

      it('stores a domain that names no owner as no project\'s: listed for no project, only in the all-projects listing', async () => {
        const uuid = await seed(null, { projectId: null });
        expect((await store.getOrThrow(uuid)).projectId).toBeNull();
        expect(await store.listByProject('project-a')).toEqual([]);
        expect(await store.listByProject('')).toEqual([]);
        expect((await store.listAll()).map((i) => i.uuid)).toEqual([uuid]);
        // an owner reported later (the operator set a default project, Nova's metadata appeared) is taken
        const [owned] = await store.upsertFromInventory([domain({ uuid, projectId: 'project-b' })]);
        expect(owned?.projectId).toBe('project-b');
        // and is never taken away again
        const [still] = await store.upsertFromInventory([domain({ uuid, projectId: null })]);
        expect(still?.projectId).toBe('project-b');
      });

      it('refreshes observed fields of a known instance but never task_state, project or image', async () => {
        const d = domain();
        const uuid = await seed(null, d);
        await store.setTaskStateOrThrow(uuid, [null], 'image_uploading');
        const created = (await store.getOrThrow(uuid)).createdAt;
        clockMs += 5000;
        const [after] = await store.upsertFromInventory([
          {
            ...d,
            name: 'renamed',
            host: 'compute-2',
            projectId: 'project-b',
            imageRef: 'other-image',
            powerState: POWER_STATE_PAUSED,
            disks: [
              { path: 'vms/one/data.raw', format: 'raw', target: 'vdb' },
              { path: 'vms/one/root.raw', format: 'raw', target: 'vda' },
            ],
          },
        ]);
        expect(after).toMatchObject({
          name: 'renamed',
          host: 'compute-2',
          projectId: 'project-a',
          imageRef: 'base-image',
          powerState: POWER_STATE_PAUSED,
          vmState: 'paused',
          taskState: 'image_uploading',
          rootDisk: { path: 'vms/one/root.raw', format: 'raw' },
          createdAt: created,
          updatedAt: new Date(clockMs).toISOString(),
        });
        expect(await store.getOrThrow(uuid)).toEqual(after);
      });

      it("records the owner's user and the flavor, refreshes the flavor and keeps a known user", async () => {
        const small = { name: 'm1.small', vcpus: 1, memoryMiB: 2048, diskGiB: 20, swapMiB: 0, ephemeralGiB: 0 };
        const d = domain({ userId: 'user-1', flavor: small });
        const [first] = await store.upsertFromInventory([d]);
        expect(first).toMatchObject({ userId: 'user-1', flavor: small });
        const resized = { ...small, name: 'm1.large', vcpus: 4 };
        const [after] = await store.upsertFromInventory([{ ...d, userId: null, flavor: resized }]);
        expect(after).toMatchObject({ userId: 'user-1', flavor: resized });
        expect(await store.getOrThrow(d.uuid)).toEqual(after);
      });

      it('records the volumes a domain names, follows a detach, and keeps them when a host reports none', async () => {
        const root = { volumeId: '0b6a57d4-3c1e-4a8f-9d2b-7e5f4c3b2a19', device: 'vda', root: true };
        const data = { volumeId: '5e2f1a3b-8c7d-4e6f-a5b4-c3d2e1f0a9b8', device: 'vdb', root: false };
        const d = domain({ volumes: [root, data] });
        const [first] = await store.upsertFromInventory([d]);
        expect(first?.volumes).toEqual([root, data]);
        const [detached] = await store.upsertFromInventory([{ ...d, volumes: [root] }]);
        expect(detached?.volumes).toEqual([root]);
        const [silent] = await store.upsertFromInventory([{ ...d, volumes: undefined }]);
        expect(silent?.volumes).toEqual([root]);
        expect(await store.getOrThrow(d.uuid)).toEqual(silent);
        const plain = domain();
        expect((await store.upsertFromInventory([plain]))[0]?.volumes).toEqual([]);
        const forged = { ...domain(), volumes: [{ volumeId: '../../volumes', device: 'vda', root: true }] } as unknown as InventoryDomain;
        await expect(store.upsertFromInventory([forged])).rejects.toBeInstanceOf(InvalidStoreInput);
      });

      it('keeps vm_state when the host reports NOSTATE', async () => {
        const d = domain({ powerState: POWER_STATE_PAUSED });
        await store.upsertFromInventory([d]);
        const [after] = await store.upsertFromInventory([{ ...d, powerState: POWER_STATE_NOSTATE }]);
        expect(after).toMatchObject({ vmState: 'paused', powerState: POWER_STATE_NOSTATE });
      });

      it('does not resurrect a soft-deleted instance', async () => {
        const d = domain();
        const uuid = await seed(null, d);
        await store.markDeleted(uuid);
        expect(await store.upsertFromInventory([{ ...d, host: 'compute-9' }])).toEqual([]);
        const row = await store.getOrThrow(uuid, { includeDeleted: true });
        expect(row).toMatchObject({ deleted: true, vmState: 'deleted', host: 'compute-1' });
      });

      it('rejects an invalid report without writing any of it', async () => {
        const good = domain();
        const bad = { ...domain(), disks: [{ path: 'x', format: 'vmdk' }] } as unknown as InventoryDomain;
        await expect(store.upsertFromInventory([good, bad])).rejects.toBeInstanceOf(InvalidStoreInput);
        expect(await store.get(good.uuid)).toBeUndefined();
      });
    });

    describe('reads and lifecycle', () => {
      it('lists live instances by project and by host', async () => {
        const a1 = await seed(null, { projectId: 'p1', host: 'h1' });
        const a2 = await seed(null, { projectId: 'p1', host: 'h2' });
        const b1 = await seed(null, { projectId: 'p2', host: 'h1' });
        const gone = await seed(null, { projectId: 'p1', host: 'h1' });
        await store.markDeleted(gone);
        const ids = (xs: { uuid: string }[]): string[] => xs.map((x) => x.uuid).sort();
        expect(ids(await store.listByProject('p1'))).toEqual([a1, a2].sort());
        expect(ids(await store.listByHost('h1'))).toEqual([a1, b1].sort());
        expect(await store.listByProject('nobody')).toEqual([]);
      });

      it('lists every live instance of every project, oldest first', async () => {
        const first = await seed(null, { projectId: 'p1' });
        clockMs += 1_000;
        const second = await seed(null, { projectId: 'p2' });
        const gone = await seed(null, { projectId: 'p1' });
        await store.markDeleted(gone);
        expect((await store.listAll()).map((i) => i.uuid)).toEqual([first, second]);
      });

      it('summarises hosts: live instances and those with a task in progress', async () => {
        await seed(null, { host: 'h2' });
        await seed('image_uploading', { host: 'h2' });
        await seed('deleting', { host: 'h2' });
        await seed(null, { host: 'h1' });
        const gone = await seed('image_snapshot', { host: 'h3' });
        await store.markDeleted(gone);
        expect(await store.listHosts()).toEqual([
          { host: 'h1', servers: 1, busy: 0 },
          { host: 'h2', servers: 3, busy: 2 },
        ]);
      });

      it('marks deleting, then deleted, hiding the row from default reads', async () => {
        const uuid = await seed('image_uploading');
        expect((await store.markDeleting(uuid)).taskState).toBe('deleting');
        const deleted = await store.markDeleted(uuid);
        expect(deleted).toMatchObject({ vmState: 'deleted', taskState: null, powerState: POWER_STATE_NOSTATE, deleted: true });
        expect(deleted.deletedAt).toBe(new Date(clockMs).toISOString());
        expect(await store.get(uuid)).toBeUndefined();
        await expect(store.markDeleting(uuid)).rejects.toBeInstanceOf(InstanceNotFound);
        await expect(store.markDeleted(uuid)).rejects.toBeInstanceOf(InstanceNotFound);
      });

      it('sets power state without touching task_state', async () => {
        const uuid = await seed('image_snapshot');
        const after = await store.setPowerState(uuid, POWER_STATE_SHUTDOWN);
        expect(after).toMatchObject({ powerState: POWER_STATE_SHUTDOWN, taskState: 'image_snapshot' });
        await expect(store.setPowerState(randomUUID(), POWER_STATE_RUNNING)).rejects.toBeInstanceOf(InstanceNotFound);
        await expect(store.setPowerState(uuid, 2 as unknown as typeof POWER_STATE_RUNNING)).rejects.toBeInstanceOf(InvalidStoreInput);
      });
    });
  });
}
