// What a service on a shared store serves from the bucket's records (docs/object-store.md, "Shared
// records"): its own records stay authoritative here, except that a delete made through another
// service (the bucket's copy says deleted) is adopted on the next read; records it does not hold
// are another service's, served read-only; a delete of one through this service is a conditional
// write over the version just read.
import { ImageConflict } from '../client/image-errors';
import type { ImageRecord } from '../client/image-record';
import type { ImageRecordRepository } from './image-record-repository';
import type { SharedRecords } from './shared-records';
import { presentOrGone } from './upload-failures';

/**
 * Marks deleted the local records whose bucket copy another service deleted; returns their ids.
 * Run at start before the repair, which would otherwise kill them (their index is gone) and
 * publish that over the deletion.
 */
export async function adoptDeletions(records: ImageRecordRepository, remote: Iterable<ImageRecord | undefined>): Promise<string[]> {
  const adopted: string[] = [];
  for (const r of remote) {
    const local = r === undefined ? undefined : records.get(r.id);
    if (r?.status !== 'deleted' || local === undefined || local.status === 'deleted') continue;
    await records.update(r.id, (current) => ({ ...presentOrGone(r.id, current), status: 'deleted', updated_at: r.updated_at }));
    adopted.push(r.id);
  }
  return adopted;
}

export class SharedImageReads {
  constructor(
    private readonly records: ImageRecordRepository,
    private readonly remote: SharedRecords,
    /** drops what this service keeps of an image deleted elsewhere (its blob, its upload session) */
    private readonly forget: (id: string) => Promise<void>,
  ) {}

  /** The record this service serves for `id`: its own (a delete elsewhere adopted), else the bucket's. */
  async find(id: string, maxAgeMs?: number): Promise<ImageRecord | undefined> {
    const remote = await this.remote.lookup(id, maxAgeMs);
    if (this.records.get(id) === undefined) return remote;
    await this.adopt([remote]);
    return this.records.get(id);
  }

  /** Its own records and every other service's. */
  async all(): Promise<ImageRecord[]> {
    const remote = await this.remote.all();
    await this.adopt(remote);
    return [...this.records.all(), ...remote.filter((r) => this.records.get(r.id) === undefined)];
  }

  /** Another service's image: writes it deleted over the version just read; 409 when that service changed it since. */
  async deleteForeign(record: ImageRecord, at: string): Promise<void> {
    if (!(await this.remote.replace({ ...record, status: 'deleted', updated_at: at }))) {
      throw new ImageConflict(`Image ${record.id} was changed by another image service while it was being deleted; read it again.`);
    }
  }

  private async adopt(remote: (ImageRecord | undefined)[]): Promise<void> {
    for (const id of await adoptDeletions(this.records, remote)) await this.forget(id);
  }
}
