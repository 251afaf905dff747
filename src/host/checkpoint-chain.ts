// Chain safety on the host: before a backup job reads changes since a checkpoint, the checkpoint
// must be the one the store recorded, on the same disk of the same size, with bitmaps QEMU still
// trusts. Any doubt makes the snapshot full, with the reason said; a wrong byte is never the price.
// A checkpoint libvirt forgot (its metadata lost, its bitmap still in the qcow2) is redefined from
// what the store recorded, as KubeVirt and virtnbdbackup do.
import {
  isLibvirtError,
  VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE,
  VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE_VALIDATE,
  VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL,
  VIR_DOMAIN_CHECKPOINT_XML_NO_DOMAIN,
  VIR_ERR_CHECKPOINT_INCONSISTENT,
  VIR_ERR_INVALID_DOMAIN_CHECKPOINT,
  VIR_ERR_NO_DOMAIN_CHECKPOINT,
  VIR_ERR_OPERATION_FAILED,
  type Domain,
  type Libvirt,
} from '../libvirt';
import type { ChainParent, ChainPlan, DomainDescription } from '../contract';
import { errorMessage } from '../contract';

/** Our checkpoints' names: one per export, so a retried job never collides with an earlier one. */
export const CHECKPOINT_PREFIX = 'snap-';

export function checkpointNameFor(exportId: string): string {
  return `${CHECKPOINT_PREFIX}${exportId}`;
}

export type ChainStart = { from: string; parentImageId: string } | { from: null; reason: string };

/**
 * The plan's parent when the disk is still the one its point in time (`noun`: a libvirt checkpoint,
 * an RBD snapshot) was taken on, at the same size; else why not. Where the point lives is the
 * caller's check.
 */
export function checkChainParent(plan: ChainPlan, description: Pick<DomainDescription, 'virtualSize'>, identity: string, noun = 'checkpoint'): { parent: ChainParent } | { parent: null; reason: string } {
  const parent = plan.parent;
  if (!plan.composes) return { parent: null, reason: plan.reason ?? 'the image backend cannot compose images: every snapshot is full' };
  if (parent === null) return { parent: null, reason: plan.reason ?? 'no earlier snapshot to build on' };
  if (parent.diskIdentity !== identity) return { parent: null, reason: `the disk is not the one ${noun} ${parent.checkpoint} was taken on (${parent.diskIdentity}, now ${identity})` };
  if (parent.virtualSize !== description.virtualSize) {
    return { parent: null, reason: `the disk's virtual size changed from ${parent.virtualSize} to ${description.virtualSize} bytes since ${noun} ${parent.checkpoint}` };
  }
  return { parent };
}

/** Checks the plan's parent against the disk and libvirt; repairs forgotten checkpoint metadata. */
export async function checkChainStart(client: Libvirt, dom: Domain, description: DomainDescription, plan: ChainPlan, identity: string): Promise<ChainStart> {
  const checked = checkChainParent(plan, description, identity);
  if (checked.parent === null) return { from: null, reason: checked.reason };
  const parent = checked.parent;
  try {
    await client.checkpoints.lookupByName(dom, parent.checkpoint);
  } catch (err) {
    if (!isLibvirtError(err, VIR_ERR_NO_DOMAIN_CHECKPOINT)) throw err;
    if (parent.checkpointXml === null) return { from: null, reason: `checkpoint ${parent.checkpoint} is gone from libvirt and the store holds no description to redefine it` };
    try {
      // VALIDATE: libvirt refuses unless the disk still carries the checkpoint's bitmap.
      await client.checkpoints.createXML(dom, parent.checkpointXml, VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE | VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE_VALIDATE);
    } catch (redefineErr) {
      return { from: null, reason: `checkpoint ${parent.checkpoint} is gone from libvirt and could not be redefined: ${errorMessage(redefineErr)}` };
    }
  }
  return { from: parent.checkpoint, parentImageId: parent.imageId };
}

/**
 * Whether a failed incremental begin says the checkpoint cannot be used (missing or broken
 * bitmap, QEMU's in-use flag after a crash), so that a full job is the answer; anything else is
 * an error of its own.
 */
export function isUnusableCheckpoint(err: unknown): boolean {
  if (isLibvirtError(err, VIR_ERR_CHECKPOINT_INCONSISTENT, VIR_ERR_NO_DOMAIN_CHECKPOINT, VIR_ERR_INVALID_DOMAIN_CHECKPOINT)) return true;
  return isLibvirtError(err, VIR_ERR_OPERATION_FAILED) && /bitmap|checkpoint/i.test(errorMessage(err));
}

/** Retention: every checkpoint of ours but `keep` is deleted (bitmaps merged away), parents first. */
export async function retainCheckpoints(client: Libvirt, dom: Domain, keep: string): Promise<{ checkpointXml: string | null; deleted: string[] }> {
  const deleted: string[] = [];
  for (const cp of await client.checkpoints.listAll(dom, VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL)) {
    if (cp.name === keep || !cp.name.startsWith(CHECKPOINT_PREFIX)) continue;
    try {
      await client.checkpoints.delete(cp);
      deleted.push(cp.name);
    } catch (err) {
      if (!isLibvirtError(err, VIR_ERR_NO_DOMAIN_CHECKPOINT)) throw err;
    }
  }
  let checkpointXml: string | null = null;
  try {
    checkpointXml = await client.checkpoints.getXMLDesc(await client.checkpoints.lookupByName(dom, keep), VIR_DOMAIN_CHECKPOINT_XML_NO_DOMAIN);
  } catch (err) {
    if (!isLibvirtError(err, VIR_ERR_NO_DOMAIN_CHECKPOINT)) throw err;
  }
  return { checkpointXml, deleted };
}
