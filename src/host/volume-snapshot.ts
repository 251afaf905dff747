// Every volume of a volume-backed instance at one point in time (the heart of Nova's
// snapshot_volume_backed, with its holes closed): a running guest is frozen through its agent
// (bounded, crash-consistent when it cannot be, unless the image requires quiesce), the Cinder
// snapshots of all its volumes are asked for side by side, and the guest is thawed as soon as those
// calls have returned, not once the snapshots are `available` (Nova's unquiesce waits for that, with
// no deadline). The freeze window is measured and returned. A stopped or paused guest writes nothing
// and is not frozen, as in Nova, which quiesces ACTIVE instances only. The look for snapshots an
// earlier attempt of the run made comes before the freeze, so the freeze holds the create calls only.
import { createRunSnapshots, findRunSnapshots, type RunSnapshotsCinder, type RunVolume, type SnapshotCallsResult } from '../cinder';
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
}

export interface VolumeSnapshotOutcome extends SnapshotCallsResult {
  quiesce: QuiesceOutcome;
}

export async function snapshotVolumesAtOnePoint(deps: VolumeSnapshotDeps, req: VolumeSnapshotRequest): Promise<VolumeSnapshotOutcome> {
  // looked up before the freeze: the guest stays frozen for the create calls alone
  const existing = await findRunSnapshots(deps.cinder, req.runId, req.volumes);
  const cut = (): Promise<SnapshotCallsResult> => createRunSnapshots(deps.cinder, req.runId, req.imageName, req.volumes, existing);
  if (!req.running) return { ...(await cut()), quiesce: { quiesced: false, freezeWindowMs: null } };
  const { value, quiesce } = await withQuiescedGuest(deps.libvirt, deps.dom, deps.quiesce, cut);
  return { ...value, quiesce };
}
