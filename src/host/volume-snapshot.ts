// Every volume of a volume-backed instance at one point in time (the heart of Nova's
// snapshot_volume_backed, with its holes closed): a running guest is frozen through its agent
// (bounded, crash-consistent when it cannot be, unless the image requires quiesce), the Cinder
// snapshots of all its volumes are asked for side by side, and the guest is thawed once Cinder has
// taken them all (each has left `creating`), polled every 100 ms and with a deadline. Not sooner:
// Cinder's create call only queues a snapshot, and cinder-volume takes it later, so a guest thawed
// when the calls return writes on between the volumes' snapshots (the lockstep test caught 42
// records between two). Nova's unquiesce waits for the same, one snapshot after another, every 0.5 s
// and with no deadline. The freeze window is measured and returned. A stopped or paused guest writes nothing
// and is not frozen, as in Nova, which quiesces ACTIVE instances only. The look for snapshots an
// earlier attempt of the run made comes before the freeze, so the freeze holds the create calls only.
import { createRunSnapshots, findRunSnapshots, SnapshotsNotAvailable, waitRunSnapshots, type RunSnapshotsCinder, type RunVolume, type SnapshotCallsResult } from '../cinder';
import type { Domain, Libvirt } from '../libvirt';
import { withQuiescedGuest, type QuiesceOptions, type QuiesceOutcome } from './quiesce';

export interface VolumeSnapshotRequest {
  runId: string;
  /** the image's name: Nova names the snapshots after it */
  imageName: string;
  volumes: readonly RunVolume[];
  /** the guest is running (Nova: vm_state ACTIVE) */
  running: boolean;
}

export interface VolumeSnapshotDeps {
  libvirt: Libvirt;
  dom: Domain;
  cinder: RunSnapshotsCinder;
  quiesce: QuiesceOptions;
  /** how long a frozen guest waits for Cinder to take the snapshots; default SNAPSHOTS_TAKEN_DEADLINE_MS */
  takenDeadlineMs?: number;
}

/** The bound on a freeze waiting for cinder-volume (Nova's has none). */
export const SNAPSHOTS_TAKEN_DEADLINE_MS = 60_000;
const TAKEN_POLL_MS = 100;

/**
 * Cinder did not take every snapshot while the guest was frozen: the guest is thawed, and the
 * snapshots may not be of one point in time, so the run must not use them (nor a retry reuse them).
 */
export class SnapshotsNotTakenInFreeze extends Error {
  override readonly name = 'SnapshotsNotTakenInFreeze';
  readonly retryable = false;
  constructor(deadlineMs: number, cause: SnapshotsNotAvailable) {
    super(`Cinder had not taken every snapshot after ${deadlineMs} ms frozen (${cause.message}); the guest was thawed and the snapshots are not of one point in time`, { cause });
  }
}

export interface VolumeSnapshotOutcome extends SnapshotCallsResult {
  quiesce: QuiesceOutcome;
}

export async function snapshotVolumesAtOnePoint(deps: VolumeSnapshotDeps, req: VolumeSnapshotRequest): Promise<VolumeSnapshotOutcome> {
  // looked up before the freeze: the guest stays frozen for the create calls and Cinder taking them only
  const existing = await findRunSnapshots(deps.cinder, req.runId, req.volumes);
  const create = (): Promise<SnapshotCallsResult> => createRunSnapshots(deps.cinder, req.runId, req.imageName, req.volumes, existing);
  if (!req.running) return { ...(await create()), quiesce: { quiesced: false, freezeWindowMs: null } };
  const deadlineMs = deps.takenDeadlineMs ?? SNAPSHOTS_TAKEN_DEADLINE_MS;
  const cut = async (): Promise<SnapshotCallsResult> => {
    const calls = await create();
    try {
      await waitRunSnapshots(deps.cinder, calls.snapshots.map((s) => s.snapshotId), { deadlineMs, pollMs: TAKEN_POLL_MS, until: 'taken' });
    } catch (err) {
      if (err instanceof SnapshotsNotAvailable && err.retryable) throw new SnapshotsNotTakenInFreeze(deadlineMs, err);
      throw err;
    }
    return calls;
  };
  const { value, quiesce } = await withQuiescedGuest(deps.libvirt, deps.dom, deps.quiesce, cut);
  return { ...value, quiesce };
}
