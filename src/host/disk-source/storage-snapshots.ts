// Change tracking that lives in the storage, not in libvirt: a source whose storage keeps points in
// time itself and says what changed between two of them (Ceph RBD: snapshots and `rbd diff`).
// Such a source's live snapshot with a chain is exported from its point in time (a read-only
// qemu-nbd of it), so the image, the point and the next diff's starting point are one and the same.
// The tracking survives anything that happens to QEMU, libvirt or the host.
import type { BlockdevImageSpec } from '../nbd-export';

export interface StorageSnapshots {
  /** What a chain's record calls this kind of point in time (reasons name it). */
  readonly noun: string;
  /** Our point in time for a workflow run: a name that says it is ours and which run took it. */
  nameFor(runKey: string): string;
  exists(name: string): Promise<boolean>;
  /**
   * Takes the point now, inside the caller's quiesce window, so bounded by `timeoutMs` (the point
   * may still land after the bound: a retry finds it). One already there under the name is kept.
   */
  create(name: string, timeoutMs: number): Promise<void>;
  /** The point in time, read-only, every driver stated. */
  readOnlyImage(name: string): BlockdevImageSpec;
  /**
   * The ranges that differ between two points, ascending, disjoint, touching ones merged; or why
   * they cannot be had (the older point gone, a diff too fragmented to send as changes).
   */
  changedBetween(from: string, to: string, diskSize: number): Promise<{ changed: [number, number][] } | { unusable: string }>;
  /** Retention: every point of ours but `keep` goes; answers the ones removed. Never touches another's. */
  retain(keep: string): Promise<string[]>;
  /** A failed run's compensation: its own point goes; false when it was not there. */
  discard(name: string): Promise<boolean>;
}
