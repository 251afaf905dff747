// Damage the store found, written on the images it hurts: the read-only `snapshot_damaged`
// attribute (when, where it was found, which chunk) on an active image, and a warning in the
// service's log for the operator. The image service emits no notifications; the mark is what
// `GET /v2/images/{id}`, `snapctl` and the verify job's result show.
import type { ImageRecordRepository, RepositoryWarning } from './image-record-repository';

/** Where the damage was found. */
export type DamageFinder = 'download' | 'verify job';

export type MarkDamaged = (id: string, finder: DamageFinder, what: string) => Promise<void>;

const UNCHANGED = Symbol('unchanged');

export function damageMarker(records: ImageRecordRepository, now: () => Date, warn: RepositoryWarning): MarkDamaged {
  return async (id, finder, what) => {
    warn({ imageId: id, finder, damage: what }, 'image data damaged in the store: marked snapshot_damaged');
    const record = records.get(id);
    // The first finding stays: a second one of the same image changes nothing an operator needs.
    if (record?.status !== 'active' || record.snapshot_damaged !== undefined) return;
    const at = now().toISOString();
    await records
      .update(id, (current) => {
        if (current?.status !== 'active' || current.snapshot_damaged !== undefined) throw UNCHANGED;
        return { ...current, snapshot_damaged: `${at} ${finder}: ${what}`, updated_at: at };
      })
      .catch((err: unknown) => {
        if (err !== UNCHANGED) throw err;
      });
  };
}
