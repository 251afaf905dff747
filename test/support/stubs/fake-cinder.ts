// An in-memory Cinder for the snapshot run's tests: snapshots filtered by volume and metadata as
// Cinder filters them, a new snapshot `creating` (or `initial`), and Cinder's refusal to delete one
// still creating. Tests move the statuses with setAll.
import { randomUUID } from 'node:crypto';
import { CinderError, type CinderSnapshot, type RunSnapshotsCinder } from '../../../src/cinder';

export class FakeCinder implements RunSnapshotsCinder {
  /** every create call, in order (its volume id) */
  readonly createCalls: string[] = [];
  readonly snapshots = new Map<string, CinderSnapshot>();
  creates = 0;
  /** status a new snapshot starts in */
  initial = 'creating';

  async listSnapshots(filter: { metadata?: Record<string, string>; volumeId?: string }): Promise<CinderSnapshot[]> {
    return [...this.snapshots.values()].filter((s) => (filter.volumeId === undefined || s.volume_id === filter.volumeId) && Object.entries(filter.metadata ?? {}).every(([k, v]) => s.metadata[k] === v));
  }

  async createSnapshot(req: { volumeId: string; name: string; metadata: Record<string, string> }): Promise<CinderSnapshot> {
    this.creates += 1;
    this.createCalls.push(req.volumeId);
    const snap = { id: randomUUID(), name: req.name, status: this.initial, size: 1, volume_id: req.volumeId, metadata: req.metadata };
    this.snapshots.set(snap.id, snap);
    return snap;
  }

  async showSnapshot(id: string): Promise<CinderSnapshot> {
    const snap = this.snapshots.get(id);
    if (snap === undefined) throw new CinderError('GET snapshot', 404, 'itemNotFound', `Snapshot ${id} could not be found.`);
    return snap;
  }

  async deleteSnapshot(id: string): Promise<boolean> {
    const snap = this.snapshots.get(id);
    if (snap === undefined) return false;
    if (snap.status === 'creating') throw new CinderError('DELETE snapshot', 400, 'badRequest', 'Invalid snapshot: Snapshot status must be available or error.');
    this.snapshots.delete(id);
    return true;
  }

  setAll(status: string): void {
    for (const s of this.snapshots.values()) s.status = status;
  }
}

