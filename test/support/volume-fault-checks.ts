// What every volume-backed fault cell must end in, checked against the real services: nothing of
// the run orphaned in Cinder (a completed run keeps exactly the snapshots its image names, each
// `available` and of the guest's volume; a failed one none; as many as before plus the run's) and
// none counted twice (the project's snapshot usage not above what Cinder holds); no image left that is not
// active, a completed one size 0 with a block_device_mapping naming those snapshots; the guest
// running and never left frozen (its log keeps growing); task_state None; no workflow open.
import { z } from 'zod';
import { CinderError, type CinderClient, type CinderSnapshot } from '../../src/cinder';
import { errorMessage } from '../../src/contract';
import { DomainState, Libvirt } from '../../src/libvirt';
import { readConsole } from '../../src/testing/guest/guest-console';
import { lastFsynced } from '../../src/testing/guest/workload-verifiers';
import { openSnapshotWorkflows } from './fault-checks';
import type { FaultStack } from './fault-stack';
import { waitForFsynced } from './guest/real-guest-run';
import type { VolumeGuest } from './volume-guest';

export interface VolumeEndStateExpectation {
  imageId: string;
  completed: boolean;
  /** the project's snapshot usage before the run */
  inUseBefore: number;
}

const MappingSchema = z.array(z.object({ snapshot_id: z.string(), volume_size: z.number(), boot_index: z.number().nullable().optional() }));

/** The project's snapshots once none is still on its way (creating or deleting), or the deadline. */
async function settledSnapshots(cinder: CinderClient, timeoutMs: number): Promise<CinderSnapshot[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const snapshots = await cinder.listSnapshots({});
    if (snapshots.every((s) => s.status !== 'creating' && s.status !== 'deleting') || Date.now() > deadline) return snapshots;
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function imageViolations(stack: FaultStack, guest: VolumeGuest, cinder: CinderClient, expect: VolumeEndStateExpectation, kept: readonly CinderSnapshot[]): Promise<string[]> {
  const violations: string[] = [];
  for (const image of await stack.images.list()) {
    if (image.status !== 'active') violations.push(`image ${image.id.slice(0, 8)} left ${image.status}`);
  }
  if (!expect.completed) {
    if (kept.length > 0) violations.push(`failed run left Cinder snapshots: ${kept.map((s) => `${s.id} (${s.status})`).join(', ')}`);
    return violations;
  }
  const image = await stack.images.get(expect.imageId);
  if (image.status !== 'active' || image.size !== 0) violations.push(`completed but image ${image.status}, size ${String(image.size)}`);
  const mapping = MappingSchema.safeParse(JSON.parse(image.properties.block_device_mapping ?? 'null'));
  if (!mapping.success || mapping.data.length !== 1) {
    violations.push(`block_device_mapping is not one entry: ${image.properties.block_device_mapping ?? 'absent'}`);
    return violations;
  }
  for (const entry of mapping.data) {
    try {
      const snapshot = await cinder.showSnapshot(entry.snapshot_id);
      if (snapshot.status !== 'available' || snapshot.volume_id !== guest.volumeId) violations.push(`the image names snapshot ${entry.snapshot_id}, ${snapshot.status}, of volume ${snapshot.volume_id}`);
    } catch (err) {
      violations.push(`the image names snapshot ${entry.snapshot_id}: ${err instanceof CinderError && err.notFound ? 'gone' : errorMessage(err)}`);
    }
  }
  const named = new Set(mapping.data.map((e) => e.snapshot_id));
  const extra = kept.filter((s) => !named.has(s.id));
  if (extra.length > 0) violations.push(`Cinder snapshots the image does not name: ${extra.map((s) => `${s.id} (${s.status})`).join(', ')}`);
  return violations;
}

/** The broken rules, and what is worth reporting that is not ours to keep. */
export async function checkVolumeEndState(stack: FaultStack, guest: VolumeGuest, cinder: CinderClient, expect: VolumeEndStateExpectation): Promise<{ violations: string[]; notes: string[] }> {
  const violations: string[] = [];
  const { fixture } = guest;
  const client = await Libvirt.connect(fixture.client.uri);
  try {
    const { state } = await client.domainGetState(await client.domainLookupByName(fixture.instance.name));
    if (state !== DomainState.Running) violations.push(`guest state ${DomainState[state] ?? state}, wanted Running`);
  } finally {
    await client.close();
  }
  // never left frozen: the workload's fsynced records keep coming
  try {
    await waitForFsynced(fixture.instance.consolePath, 'log', lastFsynced(await readConsole(fixture.instance.consolePath), 'log') + 2, 60_000);
  } catch (err) {
    violations.push(`guest not writing (frozen?): ${errorMessage(err)}`);
  }

  const instance = await stack.store.getOrThrow(fixture.instance.domain.uuid);
  if (instance.taskState !== null) violations.push(`task_state ${String(instance.taskState)}, wanted None`);

  const kept = await settledSnapshots(cinder, 90_000);
  violations.push(...(await imageViolations(stack, guest, cinder, expect, kept)));
  const { inUse } = await cinder.snapshotQuota();
  const wanted = expect.inUseBefore + (expect.completed ? 1 : 0);
  if (kept.length !== wanted) violations.push(`${kept.length} snapshots held, wanted ${wanted}`);
  // counted twice: usage above what Cinder holds. Below it is Cinder's own miscount (seen after a
  // cinder-volume restart with a create queued for it), which no caller can make or mend: reported.
  if (inUse > kept.length) violations.push(`snapshot usage ${inUse} for ${kept.length} snapshots held`);
  const notes = inUse < kept.length ? [`Cinder's snapshot usage ${inUse} for ${kept.length} held`] : [];

  const open = await openSnapshotWorkflows(stack);
  if (open.length > 0) violations.push(`workflows still open: ${open.join(', ')}`);
  return { violations, notes };
}
