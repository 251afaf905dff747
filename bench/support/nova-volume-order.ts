// BASELINE, not our code path: Nova's order for snapshot_volume_backed's volumes, built from the
// same client pieces ours uses so that only the order differs. Nova (compute/api.py and the compute
// manager's quiesce/unquiesce): quiesce through the agent; create_snapshot_force for each volume, one
// call after another; then unquiesce, which first waits, snapshot after snapshot and polling every
// 0.5 s, for each to leave `creating`, and only then thaws. The guest stays frozen all that time.
// Nova waits with no deadline; the bench gives it one so a stuck run cannot hang the bench.
import { SNAPSHOT_RUN_KEY, runSnapshotName, type RunSnapshotsCinder, type RunVolume } from '../../src/cinder';
import { thaw } from '../../src/host/quiesce';
import type { Domain, Libvirt } from '../../src/libvirt';

export interface NovaOrderOutcome {
  snapshotIds: string[];
  /** freeze answered → thaw answered */
  freezeWindowMs: number;
}

/** Nova's poll interval in unquiesce's wait (loopingcall.FixedIntervalLoopingCall, interval=0.5). */
const NOVA_POLL_MS = 500;

async function waitLeavesCreating(cinder: RunSnapshotsCinder, snapshotId: string, deadline: number): Promise<void> {
  for (;;) {
    const { status } = await cinder.showSnapshot(snapshotId);
    if (status !== 'creating') return;
    if (Date.now() >= deadline) throw new Error(`snapshot ${snapshotId} still creating at the bench's deadline`);
    await new Promise((r) => setTimeout(r, NOVA_POLL_MS));
  }
}

export async function novaSequentialSnapshots(
  deps: { libvirt: Libvirt; dom: Domain; cinder: RunSnapshotsCinder; quiesceTimeoutMs: number; deadlineMs: number },
  req: { runId: string; imageName: string; volumes: readonly RunVolume[] },
): Promise<NovaOrderOutcome> {
  const { libvirt, dom, cinder } = deps;
  const deadline = Date.now() + deps.deadlineMs;
  await libvirt.domainFSFreeze(dom, [], 0, { timeoutMs: deps.quiesceTimeoutMs });
  const frozenAt = Date.now();
  const snapshotIds: string[] = [];
  try {
    for (const volume of req.volumes) {
      const made = await cinder.createSnapshot({ volumeId: volume.volumeId, name: runSnapshotName(req.imageName), metadata: { [SNAPSHOT_RUN_KEY]: req.runId } });
      snapshotIds.push(made.id);
    }
    for (const id of snapshotIds) await waitLeavesCreating(cinder, id, deadline);
  } finally {
    await thaw(libvirt, dom, { timeoutMs: deps.quiesceTimeoutMs });
  }
  return { snapshotIds, freezeWindowMs: Date.now() - frozenAt };
}
