// Schema migrations compiled into the code (not read from disk), so a bundled or relocated build
// migrates the same way as a checkout.
import { Migrator, NO_MIGRATIONS, sql, type Kysely, type Migration, type MigrationProvider, type MigrationResultSet } from 'kysely';

const INSTANCE_COLUMNS = [
  'uuid', 'name', 'host', 'project_id', 'vm_state', 'power_state', 'task_state', 'image_ref', 'root_disk_path', 'root_disk_format',
  'created_at', 'updated_at', 'deleted_at', 'deleted', 'user_id', 'flavor',
] as const;

/**
 * The instances table again, with project_id nullable or not: SQLite cannot change a column's
 * NOT NULL, so the table is copied (one transaction: a concurrent opener waits, then finds it done).
 */
async function rebuildInstances(db: Kysely<unknown>, projectRequired: boolean, projectOf: string): Promise<void> {
  const rebuild = async (t: Kysely<unknown>): Promise<void> => {
    await t.schema
      .createTable('instances_rebuilt')
      .addColumn('uuid', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('host', 'text', (c) => c.notNull())
      .addColumn('project_id', 'text', (c) => (projectRequired ? c.notNull() : c))
      .addColumn('vm_state', 'text', (c) => c.notNull())
      .addColumn('power_state', 'integer', (c) => c.notNull())
      .addColumn('task_state', 'text')
      .addColumn('image_ref', 'text')
      .addColumn('root_disk_path', 'text')
      .addColumn('root_disk_format', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addColumn('deleted_at', 'text')
      .addColumn('deleted', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('user_id', 'text')
      .addColumn('flavor', 'text')
      .execute();
    const columns = sql.raw(INSTANCE_COLUMNS.join(', '));
    const selected = sql.raw(INSTANCE_COLUMNS.map((c) => (c === 'project_id' ? projectOf : c)).join(', '));
    await sql`insert into instances_rebuilt (${columns}) select ${selected} from instances`.execute(t);
    await t.schema.dropTable('instances').execute();
    await t.schema.alterTable('instances_rebuilt').renameTo('instances').execute();
    await t.schema.createIndex('instances_project_id_idx').on('instances').column('project_id').execute();
    await t.schema.createIndex('instances_host_idx').on('instances').column('host').execute();
  };
  // PostgreSQL's migrations already run in a transaction; SQLite's do not.
  if (db.isTransaction) await rebuild(db);
  else await db.transaction().execute(rebuild);
}

// Kysely<unknown>-typed migrations: they must not depend on the current table types, which
// describe the latest schema rather than the one each migration starts from.
const migrations: Record<string, Migration> = {
  '0001_create_instances': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('instances')
        .addColumn('uuid', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('host', 'text', (c) => c.notNull())
        .addColumn('project_id', 'text', (c) => c.notNull())
        .addColumn('vm_state', 'text', (c) => c.notNull())
        .addColumn('power_state', 'integer', (c) => c.notNull())
        .addColumn('task_state', 'text')
        .addColumn('image_ref', 'text')
        .addColumn('root_disk_path', 'text')
        .addColumn('root_disk_format', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addColumn('deleted_at', 'text')
        .addColumn('deleted', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema.createIndex('instances_project_id_idx').on('instances').column('project_id').execute();
      await db.schema.createIndex('instances_host_idx').on('instances').column('host').execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.dropTable('instances').execute();
    },
  },
  // Nova's server view shows the owning user and the flavor; both come from the host's report.
  '0002_instance_user_and_flavor': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable('instances').addColumn('user_id', 'text').execute();
      await db.schema.alterTable('instances').addColumn('flavor', 'text').execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable('instances').dropColumn('flavor').execute();
      await db.schema.alterTable('instances').dropColumn('user_id').execute();
    },
  },
  // Nova's instance actions: one row per createImage request, its events below it.
  '0003_instance_actions': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('instance_actions')
        .addColumn('request_id', 'text', (c) => c.primaryKey())
        .addColumn('instance_uuid', 'text', (c) => c.notNull())
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('image_id', 'text')
        .addColumn('user_id', 'text')
        .addColumn('project_id', 'text', (c) => c.notNull())
        .addColumn('start_time', 'text', (c) => c.notNull())
        .addColumn('finish_time', 'text')
        .addColumn('message', 'text')
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('instance_actions_instance_idx').on('instance_actions').column('instance_uuid').execute();
      await db.schema.createIndex('instance_actions_image_idx').on('instance_actions').column('image_id').execute();
      await db.schema
        .createTable('instance_action_events')
        .addColumn('request_id', 'text', (c) => c.notNull())
        .addColumn('event', 'text', (c) => c.notNull())
        .addColumn('host', 'text')
        .addColumn('start_time', 'text', (c) => c.notNull())
        .addColumn('finish_time', 'text')
        .addColumn('result', 'text')
        .addColumn('traceback', 'text')
        .addPrimaryKeyConstraint('instance_action_events_pk', ['request_id', 'event'])
        .execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.dropTable('instance_action_events').execute();
      await db.schema.dropTable('instance_actions').execute();
    },
  },
  // Incremental snapshots: the chain of checkpoints and the images they belong to.
  '0004_snapshot_chain': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('snapshot_chain')
        .addColumn('image_id', 'text', (c) => c.primaryKey())
        .addColumn('instance_uuid', 'text', (c) => c.notNull())
        .addColumn('host', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('full_reason', 'text')
        .addColumn('parent_image_id', 'text')
        .addColumn('checkpoint', 'text')
        .addColumn('checkpoint_xml', 'text')
        .addColumn('disk_identity', 'text')
        .addColumn('virtual_size', 'bigint', (c) => c.notNull())
        .addColumn('changed_bytes', 'bigint')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('retired', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema.createIndex('snapshot_chain_instance_idx').on('snapshot_chain').columns(['instance_uuid', 'created_at']).execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.dropTable('snapshot_chain').execute();
    },
  },
  // A domain without <nova:owner> belongs to no project (admin-only) unless the host sets a default
  // project. The old fixed default, 'demo', is taken back from every row: the next report of each
  // host gives back the project its domain names or its host's configured default.
  '0005_ownerless_instances': {
    async up(db: Kysely<unknown>): Promise<void> {
      await rebuildInstances(db, false, "case when project_id = 'demo' then null else project_id end");
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await rebuildInstances(db, true, "coalesce(project_id, 'demo')");
    },
  },
  // Volume-backed instances: the disks the host's domain names as Cinder volumes (JSON).
  '0006_instance_volumes': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable('instances').addColumn('volumes', 'text').execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable('instances').dropColumn('volumes').execute();
    },
  },
};

class InCodeMigrationProvider implements MigrationProvider {
  async getMigrations(): Promise<Record<string, Migration>> {
    return migrations;
  }
}

export const STORE_MIGRATION_NAMES: readonly string[] = Object.keys(migrations).sort();

export class StoreMigrationFailed extends Error {
  override readonly name = 'StoreMigrationFailed';
}

function unwrap(result: MigrationResultSet): void {
  if (result.error !== undefined) {
    const failed = result.results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new StoreMigrationFailed(`instance store migration ${failed} failed`, { cause: result.error });
  }
}

function migratorFor(db: Kysely<unknown>): Migrator {
  return new Migrator({ db, provider: new InCodeMigrationProvider() });
}

/**
 * Applies all pending migrations; safe to call on every start-up and from several processes.
 * PostgreSQL serialises migrators with an advisory lock; SQLite has none, so when the API and a
 * control worker open a fresh file together one of them loses the race ("already exists"): it
 * then finds the migrations applied by the other and succeeds, or tries again.
 */
export async function migrateStoreToLatest<T>(db: Kysely<T>): Promise<void> {
  const migrator = migratorFor(db as unknown as Kysely<unknown>);
  for (let attempt = 1; ; attempt++) {
    const result = await migrator.migrateToLatest();
    if (result.error === undefined) return;
    const applied: string[] = await appliedStoreMigrations(db).catch(() => []);
    if (STORE_MIGRATION_NAMES.every((name) => applied.includes(name))) return;
    if (attempt >= 5) unwrap(result);
    await new Promise((r) => setTimeout(r, 50 * attempt));
  }
}

/** Rolls back every migration (tests and disaster recovery only). */
export async function migrateStoreToEmpty<T>(db: Kysely<T>): Promise<void> {
  unwrap(await migratorFor(db as unknown as Kysely<unknown>).migrateTo(NO_MIGRATIONS));
}

/** Migrates up or down to the named migration (tests and disaster recovery only). */
export async function migrateStoreTo<T>(db: Kysely<T>, name: string): Promise<void> {
  unwrap(await migratorFor(db as unknown as Kysely<unknown>).migrateTo(name));
}

/** Names of the migrations already applied, in order. */
export async function appliedStoreMigrations<T>(db: Kysely<T>): Promise<string[]> {
  const all = await migratorFor(db as unknown as Kysely<unknown>).getMigrations();
  return all.filter((m) => m.executedAt !== undefined).map((m) => m.name);
}
