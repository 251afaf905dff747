// One run's Cinder snapshots against an in-memory Cinder: side by side, found again by the run's tag
// on a retry (none made twice), an errored one replaced, the wait's deadline and Cinder's error state,
// and the clean-up that waits for a snapshot still `creating` before deleting it.
import { randomUUID } from 'node:crypto';
import { createRunSnapshots, deleteRunSnapshots, SnapshotsNotAvailable, waitRunSnapshots } from '../../../src/cinder';
import { FakeCinder } from '../../support/stubs/fake-cinder';

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
