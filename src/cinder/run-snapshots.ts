// The Cinder side of one volume-backed snapshot run (Nova's snapshot_volume_backed, with its holes
// closed): every volume snapshotted side by side (the caller holds one guest freeze until Cinder has
// taken them all), each snapshot tagged with the run so that a retried step finds the one it already
// asked for instead of making a second; a wait for `available` with a deadline (Nova waits with
// none, the guest frozen meanwhile); and the run's clean-up, which finds its snapshots by the tag
// and deletes each once Cinder lets it (a snapshot still `creating` cannot be deleted yet).
import { CinderError } from './errors';
import type { CinderClient } from './client';
import type { CinderSnapshot } from './schemas';

/** What a run needs of the client (stubbed in the workflow's tests). */
export type RunSnapshotsCinder = Pick<CinderClient, 'listSnapshots' | 'createSnapshot' | 'showSnapshot' | 'deleteSnapshot'>;

/** The metadata key naming the run that made a snapshot. */
export const SNAPSHOT_RUN_KEY = 'snapshot_run';

export interface RunVolume {
  volumeId: string;
  device: string;
  root: boolean;
  sizeGiB: number;
}

export interface RunSnapshot extends RunVolume {
  snapshotId: string;
  /** false: found from an earlier attempt of the same run */
  created: boolean;
}

export interface SnapshotCallsResult {
  snapshots: RunSnapshot[];
  /** from the first create call sent to the last one answered: what a freeze around them lasts at least */
  callsMs: number;
}

export class SnapshotsNotAvailable extends Error {
  override readonly name = 'SnapshotsNotAvailable';
  constructor(
    readonly pending: readonly { snapshotId: string; status: string }[],
    readonly failed: boolean,
  ) {
    super(`${failed ? 'Cinder failed' : 'not available in time:'} ${pending.map((p) => `${p.snapshotId} ${p.status}`).join(', ')}`);
  }

  /** an `error` snapshot stays in error; one still `creating` may finish on a later attempt */
  get retryable(): boolean {
    return !this.failed;
  }
}

/** Nova names the snapshots "snapshot for <image name>". */
export function runSnapshotName(imageName: string): string {
  return `snapshot for ${imageName}`.slice(0, 255);
}

async function runSnapshotOf(cinder: RunSnapshotsCinder, runId: string, volumeId: string): Promise<CinderSnapshot | undefined> {
  const found = await cinder.listSnapshots({ volumeId, metadata: { [SNAPSHOT_RUN_KEY]: runId } });
  // an errored one is not the run's snapshot: a new one is made, the errored one goes with the run's clean-up
  return found.find((s) => !s.status.startsWith('error') && s.status !== 'deleting');
}

/** The snapshot this run already made of each volume (undefined: none yet), in the volumes' order. */
export function findRunSnapshots(cinder: RunSnapshotsCinder, runId: string, volumes: readonly RunVolume[]): Promise<(CinderSnapshot | undefined)[]> {
  return Promise.all(volumes.map((v) => runSnapshotOf(cinder, runId, v.volumeId)));
}

/**
 * Snapshots every volume side by side, reusing any this run already made: `existing` as
 * findRunSnapshots found them (looked up here when not given, so a caller holding a freeze can look
 * before it freezes).
 */
export async function createRunSnapshots(cinder: RunSnapshotsCinder, runId: string, imageName: string, volumes: readonly RunVolume[], existing?: readonly (CinderSnapshot | undefined)[]): Promise<SnapshotCallsResult> {
  const found = existing ?? (await findRunSnapshots(cinder, runId, volumes));
  const started = performance.now();
  const snapshots = await Promise.all(
    volumes.map(async (volume, i): Promise<RunSnapshot> => {
      const earlier = found[i];
      if (earlier !== undefined) return { ...volume, snapshotId: earlier.id, created: false };
      const made = await cinder.createSnapshot({ volumeId: volume.volumeId, name: runSnapshotName(imageName), metadata: { [SNAPSHOT_RUN_KEY]: runId } });
      return { ...volume, snapshotId: made.id, created: true };
    }),
  );
  return { snapshots, callsMs: Math.round(performance.now() - started) };
}

/**
 * Waits until every snapshot is `available`; an `error` one or the deadline fails with
 * SnapshotsNotAvailable. `until: 'taken'` returns as soon as none is `creating` any more: Cinder's
 * create call only queues the snapshot, cinder-volume takes it later, and leaving `creating` is when
 * it has (what a guest must stay frozen for).
 */
export async function waitRunSnapshots(cinder: RunSnapshotsCinder, snapshotIds: readonly string[], options: { deadlineMs: number; pollMs?: number; signal?: AbortSignal; until?: 'available' | 'taken' }): Promise<void> {
  const deadline = Date.now() + options.deadlineMs;
  const done = options.until === 'taken' ? (status: string) => status !== 'creating' : (status: string) => status === 'available';
  for (;;) {
    const states = await Promise.all(snapshotIds.map(async (id) => ({ snapshotId: id, status: (await cinder.showSnapshot(id)).status })));
    const failed = states.filter((s) => s.status.startsWith('error'));
    if (failed.length > 0) throw new SnapshotsNotAvailable(failed, true);
    const pending = states.filter((s) => !done(s.status));
    if (pending.length === 0) return;
    if (Date.now() >= deadline) throw new SnapshotsNotAvailable(pending, false);
    options.signal?.throwIfAborted();
    await new Promise((r) => setTimeout(r, options.pollMs ?? 500));
  }
}

/**
 * Deletes every snapshot the run made (found by its tag, so also those of an attempt that died
 * before it could report them). One still `creating` is waited for, up to the deadline; returns the
 * ids of those that are gone or going.
 */
export async function deleteRunSnapshots(cinder: RunSnapshotsCinder, runId: string, options: { deadlineMs: number; pollMs?: number }): Promise<string[]> {
  const deadline = Date.now() + options.deadlineMs;
  const found = await cinder.listSnapshots({ metadata: { [SNAPSHOT_RUN_KEY]: runId } });
  await Promise.all(found.map((snapshot) => deleteWhenAllowed(cinder, snapshot, deadline, options.pollMs ?? 500)));
  return found.map((s) => s.id);
}

async function deleteWhenAllowed(cinder: RunSnapshotsCinder, snapshot: CinderSnapshot, deadline: number, pollMs: number): Promise<void> {
  let status = snapshot.status;
  for (;;) {
    if (status === 'deleting') return;
    try {
      await cinder.deleteSnapshot(snapshot.id);
      return;
    } catch (err) {
      // 400: not in a deletable state yet (creating); anything else is the caller's to retry
      if (!(err instanceof CinderError && err.status === 400) || Date.now() >= deadline) throw err;
    }
    await new Promise((r) => setTimeout(r, pollMs));
    try {
      status = (await cinder.showSnapshot(snapshot.id)).status;
    } catch (err) {
      if (err instanceof CinderError && err.notFound) return;
      throw err;
    }
  }
}
