// What the volume-backed snapshot path needs of Cinder, over its v3 API for one project: a volume
// and its attachments (is this instance's disk a Cinder volume, attached to it?), snapshots made with
// `force` as Nova's create_snapshot_force, looked up by name and metadata so a retried step finds the
// one it asked for, deleted by compensations; and the snapshot quota, checked before any is made.
// Cinder's RBD driver has no consistent group snapshots, so there is no group call here: the caller
// snapshots volumes side by side under one guest freeze.
import { z } from 'zod';
import { CinderError } from './errors';
import { callCinder } from './rpc';
import { sendCinder, type CinderConnection } from './transport';
import { Answers, type CinderAbsoluteLimits, type CinderAttachment, type CinderSnapshot, type CinderVolume } from './schemas';

const UuidSchema = z.string().uuid();
const MetadataSchema = z.record(z.string().max(255)).refine((m) => Object.keys(m).length <= 32, 'at most 32 metadata keys');

/** Ids go into URL paths: a non-uuid could retarget the request, so it never leaves the client. */
function checkedId(kind: string, id: string): string {
  if (!UuidSchema.safeParse(id).success) throw new CinderError(`${kind} id check`, 400, 'badRequest', `invalid ${kind} id ${JSON.stringify(id).slice(0, 80)}`);
  return id;
}

export interface CreateSnapshotRequest {
  volumeId: string;
  name: string;
  description?: string;
  metadata: Record<string, string>;
}

export interface SnapshotFilter {
  name?: string;
  metadata?: Record<string, string>;
  volumeId?: string;
}

export interface SnapshotQuota {
  /** -1: unlimited */
  limit: number;
  inUse: number;
}

export class CinderClient {
  constructor(readonly conn: CinderConnection) {}

  async showVolume(volumeId: string): Promise<CinderVolume> {
    const id = checkedId('volume', volumeId);
    return (await callCinder(this.conn, { method: 'GET', path: `volumes/${id}`, operation: 'GET volume' }, Answers.volume)).volume;
  }

  /** The volume's attachments (Cinder's attachment records, microversion 3.27). */
  async listAttachments(volumeId: string): Promise<CinderAttachment[]> {
    const id = checkedId('volume', volumeId);
    const query = new URLSearchParams({ volume_id: id });
    const answer = await callCinder(this.conn, { method: 'GET', path: `attachments/detail?${query.toString()}`, operation: 'GET attachments' }, Answers.attachments);
    // the filter is Cinder's; an answer for another volume is not ours to read
    return answer.attachments.filter((a) => a.volume_id === id);
  }

  /** Nova's create_snapshot_force: a snapshot of an in-use volume. */
  async createSnapshot(req: CreateSnapshotRequest): Promise<CinderSnapshot> {
    const metadata = MetadataSchema.parse(req.metadata);
    const body = { snapshot: { volume_id: checkedId('volume', req.volumeId), name: req.name.slice(0, 255), description: req.description?.slice(0, 255), metadata, force: true } };
    return (await callCinder(this.conn, { method: 'POST', path: 'snapshots', body, operation: 'POST snapshots' }, Answers.snapshot)).snapshot;
  }

  async showSnapshot(snapshotId: string): Promise<CinderSnapshot> {
    const id = checkedId('snapshot', snapshotId);
    return (await callCinder(this.conn, { method: 'GET', path: `snapshots/${id}`, operation: 'GET snapshot' }, Answers.snapshot)).snapshot;
  }

  /** The project's snapshots matching every given filter (Cinder filters; checked again here). */
  async listSnapshots(filter: SnapshotFilter): Promise<CinderSnapshot[]> {
    const query = new URLSearchParams();
    if (filter.name !== undefined) query.set('name', filter.name);
    if (filter.volumeId !== undefined) query.set('volume_id', checkedId('volume', filter.volumeId));
    const metadata = filter.metadata === undefined ? undefined : MetadataSchema.parse(filter.metadata);
    if (metadata !== undefined) query.set('metadata', JSON.stringify(metadata));
    const answer = await callCinder(this.conn, { method: 'GET', path: `snapshots/detail?${query.toString()}`, operation: 'GET snapshots' }, Answers.snapshots);
    return answer.snapshots.filter(
      (s) =>
        (filter.name === undefined || s.name === filter.name) &&
        (filter.volumeId === undefined || s.volume_id === filter.volumeId) &&
        Object.entries(metadata ?? {}).every(([k, v]) => s.metadata[k] === v),
    );
  }

  /** Deletes a snapshot; one already gone counts as deleted (`false`). Cinder deletes asynchronously. */
  async deleteSnapshot(snapshotId: string): Promise<boolean> {
    const id = checkedId('snapshot', snapshotId);
    try {
      await sendCinder(this.conn, { method: 'DELETE', path: `snapshots/${id}`, operation: 'DELETE snapshot' });
      return true;
    } catch (err) {
      if (err instanceof CinderError && err.notFound) return false;
      throw err;
    }
  }

  async absoluteLimits(): Promise<CinderAbsoluteLimits> {
    return (await callCinder(this.conn, { method: 'GET', path: 'limits', operation: 'GET limits' }, Answers.limits)).limits.absolute;
  }

  /** The project's snapshot quota and use, as the limits API reports them to a member. */
  async snapshotQuota(): Promise<SnapshotQuota> {
    const limits = await this.absoluteLimits();
    return { limit: limits.maxTotalSnapshots, inUse: limits.totalSnapshotsUsed };
  }
}
