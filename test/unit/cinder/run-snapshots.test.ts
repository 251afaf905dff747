// One run's Cinder snapshots against an in-memory Cinder: side by side, found again by the run's tag
// on a retry (none made twice), an errored one replaced, the wait's deadline and Cinder's error state,
// and the clean-up that waits for a snapshot still `creating` before deleting it.
import { randomUUID } from 'node:crypto';
import { CinderError, createRunSnapshots, deleteRunSnapshots, SnapshotsNotAvailable, waitRunSnapshots, type CinderSnapshot, type RunSnapshotsCinder } from '../../../src/cinder';

class FakeCinder implements RunSnapshotsCinder {
  readonly snapshots = new Map<string, CinderSnapshot>();
  creates = 0;
  /** status a new snapshot starts in */
  initial = 'creating';

  async listSnapshots(filter: { metadata?: Record<string, string>; volumeId?: string }): Promise<CinderSnapshot[]> {
    return [...this.snapshots.values()].filter((s) => (filter.volumeId === undefined || s.volume_id === filter.volumeId) && Object.entries(filter.metadata ?? {}).every(([k, v]) => s.metadata[k] === v));
  }

  async createSnapshot(req: { volumeId: string; name: string; metadata: Record<string, string> }): Promise<CinderSnapshot> {
    this.creates += 1;
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

const volumes = [
  { volumeId: randomUUID(), device: 'vda', root: true, sizeGiB: 10 },
  { volumeId: randomUUID(), device: 'vdb', root: false, sizeGiB: 2 },
];

describe("a run's Cinder snapshots", () => {
  it('snapshots every volume with the run tag and Nova\'s name, and a retried step makes none twice', async () => {
    const cinder = new FakeCinder();
    const first = await createRunSnapshots(cinder, 'run-1', 'nightly', volumes);
    expect(first.snapshots.map((s) => [s.device, s.created])).toEqual([['vda', true], ['vdb', true]]);
    expect([...cinder.snapshots.values()].map((s) => [s.name, s.metadata])).toEqual(volumes.map(() => ['snapshot for nightly', { snapshot_run: 'run-1' }]));
    const retried = await createRunSnapshots(cinder, 'run-1', 'nightly', volumes);
    expect(retried.snapshots.map((s) => s.snapshotId)).toEqual(first.snapshots.map((s) => s.snapshotId));
    expect(retried.snapshots.every((s) => !s.created)).toBe(true);
    expect(cinder.creates).toBe(2);
    // another run makes its own
    await createRunSnapshots(cinder, 'run-2', 'nightly', volumes);
    expect(cinder.creates).toBe(4);
  });

  it('replaces a snapshot of the run that Cinder put in error', async () => {
    const cinder = new FakeCinder();
    const first = await createRunSnapshots(cinder, 'run-1', 'n', volumes.slice(0, 1));
    cinder.setAll('error');
    const again = await createRunSnapshots(cinder, 'run-1', 'n', volumes.slice(0, 1));
    expect(again.snapshots[0]?.snapshotId).not.toBe(first.snapshots[0]?.snapshotId);
  });

  it('waits for available with a deadline, and fails for good on error', async () => {
    const cinder = new FakeCinder();
    const { snapshots } = await createRunSnapshots(cinder, 'run-1', 'n', volumes);
    const ids = snapshots.map((s) => s.snapshotId);
    const late = await waitRunSnapshots(cinder, ids, { deadlineMs: 100, pollMs: 20 }).catch((e: unknown) => e);
    expect(late).toBeInstanceOf(SnapshotsNotAvailable);
    expect(late).toMatchObject({ failed: false, retryable: true });
    setTimeout(() => cinder.setAll('available'), 50);
    await expect(waitRunSnapshots(cinder, ids, { deadlineMs: 5_000, pollMs: 20 })).resolves.toBeUndefined();
    cinder.setAll('error');
    await expect(waitRunSnapshots(cinder, ids, { deadlineMs: 5_000, pollMs: 20 })).rejects.toMatchObject({ failed: true, retryable: false });
  });

  it("cleans up every snapshot of the run, waiting for one still creating, and leaves other runs' alone", async () => {
    const cinder = new FakeCinder();
    await createRunSnapshots(cinder, 'run-1', 'n', volumes);
    await createRunSnapshots(cinder, 'run-2', 'n', volumes);
    setTimeout(() => cinder.setAll('available'), 60);
    const deleted = await deleteRunSnapshots(cinder, 'run-1', { deadlineMs: 5_000, pollMs: 20 });
    expect(deleted).toHaveLength(2);
    expect([...cinder.snapshots.values()].map((s) => s.metadata.snapshot_run)).toEqual(['run-2', 'run-2']);
    await expect(deleteRunSnapshots(cinder, 'run-1', { deadlineMs: 100 })).resolves.toEqual([]);
  });

  it('gives up on a snapshot stuck in creating at the deadline, with Cinder\'s refusal', async () => {
    const cinder = new FakeCinder();
    await createRunSnapshots(cinder, 'run-1', 'n', volumes.slice(0, 1));
    await expect(deleteRunSnapshots(cinder, 'run-1', { deadlineMs: 80, pollMs: 20 })).rejects.toMatchObject({ status: 400 });
  });
});
