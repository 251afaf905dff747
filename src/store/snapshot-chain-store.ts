// The instance's snapshot chain: every one-pass snapshot with what it was (full or incremental, and
// why), the checkpoint taken with it, and the disk it was taken on. The newest row not retired is
// the checkpoint the next snapshot may read changes from; retention retires the others as their
// checkpoints are deleted. Every write is one statement, safe from any worker.
import type { Selectable } from 'kysely';
import type { ChainParent, ChainRecordInput, SnapshotKind } from '../contract';
import type { StoreDb } from './store-connection';
import type { SnapshotChainTable } from './store-schema';

export interface ChainEntry {
  imageId: string;
  instanceUuid: string;
  host: string;
  kind: SnapshotKind;
  fullReason: string | null;
  parentImageId: string | null;
  checkpoint: string | null;
  checkpointXml: string | null;
  diskIdentity: string | null;
  virtualSize: number;
  changedBytes: number | null;
  createdAt: string;
  retired: boolean;
}

export class SnapshotChainStore {
  constructor(
    private readonly db: StoreDb,
    private readonly now: () => Date,
  ) {}

  /** Records the snapshot (a repeat of the same image is a no-op) and retires the instance's older checkpoints. */
  async record(entry: ChainRecordInput): Promise<void> {
    await this.db
      .insertInto('snapshot_chain')
      .values({
        image_id: entry.imageId,
        instance_uuid: entry.instanceUuid,
        host: entry.host,
        kind: entry.kind,
        full_reason: entry.fullReason ?? null,
        parent_image_id: entry.parentImageId ?? null,
        checkpoint: entry.checkpoint ?? null,
        checkpoint_xml: entry.checkpointXml,
        disk_identity: entry.diskIdentity ?? null,
        virtual_size: entry.virtualSize,
        changed_bytes: entry.changedBytes ?? null,
        created_at: this.now().toISOString(),
        retired: entry.checkpoint === undefined ? 1 : 0,
      })
      .onConflict((c) => c.column('image_id').doNothing())
      .execute();
    if (entry.checkpoint !== undefined) {
      await this.db.updateTable('snapshot_chain').set({ retired: 1 }).where('instance_uuid', '=', entry.instanceUuid).where('image_id', '!=', entry.imageId).execute();
    }
  }

  /** Candidate parents, newest first: rows whose checkpoint is not retired. */
  async candidates(instanceUuid: string): Promise<ChainParent[]> {
    const rows = await this.db
      .selectFrom('snapshot_chain')
      .selectAll()
      .where('instance_uuid', '=', instanceUuid)
      .where('retired', '=', 0)
      .where('checkpoint', 'is not', null)
      .orderBy('created_at', 'desc')
      .execute();
    return rows.map((r) => ({ imageId: r.image_id, checkpoint: r.checkpoint ?? '', checkpointXml: r.checkpoint_xml, diskIdentity: r.disk_identity ?? '', virtualSize: Number(r.virtual_size) }));
  }

  /** The instance's chain, newest first. */
  async list(instanceUuid: string): Promise<ChainEntry[]> {
    const rows = await this.db.selectFrom('snapshot_chain').selectAll().where('instance_uuid', '=', instanceUuid).orderBy('created_at', 'desc').execute();
    return rows.map(toEntry);
  }

  async get(imageId: string): Promise<ChainEntry | undefined> {
    const row = await this.db.selectFrom('snapshot_chain').selectAll().where('image_id', '=', imageId).executeTakeFirst();
    return row === undefined ? undefined : toEntry(row);
  }
}

function toEntry(r: Selectable<SnapshotChainTable>): ChainEntry {
  return {
    imageId: r.image_id,
    instanceUuid: r.instance_uuid,
    host: r.host,
    kind: r.kind === 'incremental' ? 'incremental' : 'full',
    fullReason: r.full_reason,
    parentImageId: r.parent_image_id,
    checkpoint: r.checkpoint,
    checkpointXml: r.checkpoint_xml,
    diskIdentity: r.disk_identity,
    virtualSize: Number(r.virtual_size),
    changedBytes: r.changed_bytes === null ? null : Number(r.changed_bytes),
    createdAt: r.created_at,
    retired: Number(r.retired) === 1,
  };
}
