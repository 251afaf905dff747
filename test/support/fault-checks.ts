// What every fault cell must end in, checked against the real services rather than the workflow's
// word: images, task_state, the guest's power state, managed-save image, block job, the snapshots
// dir, and open workflows. Each broken rule becomes one readable violation string.
import { readdir, rm } from 'node:fs/promises';
import { DomainState, Libvirt, LibvirtError, VIR_ERR_NO_DOMAIN } from '../../src/libvirt';
import { imagesIdentical } from '../../src/host/qemu-img';
import { errorMessage, POWER_STATE_PAUSED, type PowerState } from '../../src/contract';
import type { FaultStack } from './fault-stack';
import { downloadImage } from './image-bytes';
import { guestOf, verifyGuestImage } from './guest/real-guest-run';
import type { InstanceFixture } from './instance-fixture';
import { rbdLeftovers } from './rbd-guest';

export const FILLER_NAME = '.fault-filler';

export interface EndStateExpectation {
  imageId: string;
  workflowId: string;
  completed: boolean;
  priorPowerState: PowerState;
  /** the instance was deleted by the test: task_state stays 'deleting', the domain stays gone */
  instanceDeleted: boolean;
  /** what the guest's workload had made durable when the snapshot started */
  fsyncedBefore: number;
}

async function domainFacts(client: Libvirt, name: string) {
  try {
    const dom = await client.domainLookupByName(name);
    const { state } = await client.domainGetState(dom);
    return {
      state,
      managedSave: await client.domainHasManagedSaveImage(dom),
      blockJob: state === DomainState.Shutoff ? null : await client.domainGetBlockJobInfo(dom, 'vda'),
    };
  } catch (err) {
    if (err instanceof LibvirtError && err.code === VIR_ERR_NO_DOMAIN) return null;
    throw err;
  }
}

/** Visibility can lag a moment behind the close: polled briefly before calling it open. */
export async function openSnapshotWorkflows(stack: FaultStack): Promise<string[]> {
  let open: string[] = [];
  for (let i = 0; i < 20; i++) {
    open = [];
    for await (const wf of stack.client.workflow.list({ query: `WorkflowType = 'snapshotInstance' AND ExecutionStatus = 'Running'` })) open.push(wf.workflowId);
    if (open.length === 0) return open;
    await new Promise((r) => setTimeout(r, 250));
  }
  return open;
}

/**
 * A guest that writes on after its snapshot cannot be compared with its disk: its image must be a
 * clean filesystem on which the workload verifies. A paused guest wrote nothing since: identical too.
 */
async function imageViolations(stack: FaultStack, fixture: InstanceFixture, expect: EndStateExpectation): Promise<string[]> {
  const violations: string[] = [];
  try {
    const contents = await verifyGuestImage(stack.images, expect.imageId, guestOf(fixture), expect.fsyncedBefore);
    if (!contents.fsckClean) violations.push(`image filesystem not clean: ${contents.fsckOutput.split('\n').slice(0, 3).join(' | ')}`);
  } catch (err) {
    violations.push(`image content: ${errorMessage(err)}`);
  }
  if (expect.priorPowerState === POWER_STATE_PAUSED) {
    const file = await downloadImage(stack.images, expect.imageId, fixture.dir);
    if (!(await imagesIdentical(file, fixture.instance.overlayPath, { forceShare: true }))) violations.push('image bytes differ from the paused disk');
    await rm(file, { force: true });
  }
  return violations;
}

export async function checkEndState(stack: FaultStack, fixture: InstanceFixture, expect: EndStateExpectation): Promise<string[]> {
  const violations: string[] = [];
  // A fresh connection: the fixture's own may have died with a libvirtd restart.
  const client = await Libvirt.connect(fixture.client.uri);
  try {
    const facts = await domainFacts(client, fixture.instance.name);
    if (expect.instanceDeleted) {
      if (facts !== null) violations.push('deleted domain is back');
    } else if (facts === null) {
      violations.push('domain gone');
    } else {
      const wanted = expect.priorPowerState === POWER_STATE_PAUSED ? DomainState.Paused : DomainState.Running;
      if (facts.state !== wanted) violations.push(`guest state ${DomainState[facts.state] ?? facts.state}, wanted ${DomainState[wanted]}`);
      if (facts.managedSave) violations.push('managed-save image left');
      if (facts.blockJob !== null) violations.push('block job left on vda');
    }
  } finally {
    await client.close();
  }

  const instance = await stack.store.getOrThrow(fixture.instance.domain.uuid);
  const wantedTask = expect.instanceDeleted ? 'deleting' : null;
  if (instance.taskState !== wantedTask) violations.push(`task_state ${String(instance.taskState)}, wanted ${String(wantedTask)}`);

  for (const image of await stack.images.list()) {
    if (image.status !== 'active') violations.push(`image ${image.id.slice(0, 8)} left ${image.status}`);
  }
  if (expect.completed && !expect.instanceDeleted) {
    const image = await stack.images.get(expect.imageId);
    if (image.status !== 'active') violations.push(`completed but image ${image.status}`);
    else violations.push(...(await imageViolations(stack, fixture, expect)));
  }

  if (stack.rbd !== null && fixture.instance.rbd !== null) {
    for (const left of await rbdLeftovers(stack.rbd.cluster, fixture, stack.store.chain)) violations.push(`left in Ceph: ${left}`);
  }
  const left = await leftUnderSnapshotsDir(stack.snapshotsDir);
  if (left.length > 0) violations.push(`left under snapshots dir: ${left.join(', ')}`);
  const open = await openSnapshotWorkflows(stack);
  if (open.length > 0) violations.push(`workflows still open: ${open.join(', ')}`);
  return violations;
}

/**
 * What stays under the snapshots dir. A live run that kept a checkpoint removes its work dir after
 * its close answered (closeExportAndRetain), so the dir may outlive the run by a moment: it is
 * given 10 s, far more than a few unlinks take.
 */
async function leftUnderSnapshotsDir(snapshotsDir: string): Promise<string[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const left = (await readdir(snapshotsDir)).filter((n) => n !== FILLER_NAME && n !== 'lost+found');
    if (left.length === 0 || Date.now() > deadline) return left;
    await new Promise((r) => setTimeout(r, 200));
  }
}
