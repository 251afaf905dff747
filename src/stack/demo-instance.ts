// `npm start` on a host with no domains defines one demo instance so the main job can be tried at
// once: a real Linux guest (the test guest of src/testing/guest) on Nova's disk layout (base +
// overlay), whose block writer keeps changing its ext4 disk, so a snapshot of it is a real, busy
// filesystem. It names the demo project as its `<nova:owner>` (a domain without one belongs to no
// project), so the demo token sees it. It is kept between runs; one from an older guest build, or
// one defined before it carried its owner, is replaced.
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DomainState, Libvirt, isLibvirtError, VIR_DOMAIN_XML_INACTIVE, VIR_ERR_NO_DOMAIN, VIR_ERR_OPERATION_INVALID, type Domain } from '../libvirt';
import { DEMO_INSTANCES_SUBDIR } from '../host/host-config';
import { cachedGuest, ensureGuest, type GuestArtifacts } from '../testing/guest/guest-builder';
import { linuxGuestDomainType } from '../testing/guest/kvm-probe';
import { novaOwnership } from '../host/domain-inventory';
import { planInstance, type InstanceLayout, type InstanceSpec, type RbdDiskSpec } from '../testing/instance-layout';
import { createInstance, removeInstance } from '../testing/instance-lifecycle';

export const DEMO_INSTANCE_NAME = 'demo-instance';

export interface DemoInstance {
  name: string;
  uuid: string;
  /** the guest's serial console (what its init and workload print) */
  consolePath: string;
  /** true when this run started the guest (and so shuts it off again on exit) */
  startedByUs: boolean;
  /** an RBD demo: its disk lives in the run's own cluster, so the domain goes with the stack */
  rbdLayout?: InstanceLayout;
}

export interface DemoOptions {
  name?: string;
  /** define it even when the host has other domains (tests); by default a busy host gets none */
  besideOtherDomains?: boolean;
  /** the root disk in RBD (SNAP_DEMO_STORAGE=rbd): the disk of the instance uuid in the run's cluster */
  rbdDiskFor?: (uuid: string) => RbdDiskSpec;
}

async function demoSpec(client: Libvirt, dataDir: string, name: string, rbdDiskFor?: (uuid: string) => RbdDiskSpec): Promise<InstanceSpec> {
  const artifacts: GuestArtifacts = (await cachedGuest()) ?? (await ensureGuest());
  const uuid = randomUUID();
  return {
    name,
    ...(rbdDiskFor ? { uuid, rbd: rbdDiskFor(uuid) } : {}),
    dir: join(dataDir, DEMO_INSTANCES_SUBDIR),
    diskSizeBytes: 256 * 1024 * 1024,
    domainType: await linuxGuestDomainType(client, artifacts),
    linux: { artifacts, workload: 'blocks', rateKiB: 256 },
  };
}

/**
 * The demo domain is the current one: it boots the current guest build (its kernel still exists),
 * names its owner and keeps its disk in a file. An RBD demo never is: its disk was in the cluster
 * of an earlier run, gone with it.
 */
async function isCurrentDemo(client: Libvirt, dom: Domain, layout: InstanceLayout): Promise<boolean> {
  if (layout.rbd) return false;
  const xml = await client.domainGetXMLDesc(dom, VIR_DOMAIN_XML_INACTIVE);
  const kernel = /<kernel>([^<]+)<\/kernel>/.exec(xml)?.[1];
  const onRbd = /<source protocol=['"]rbd['"]/.test(xml);
  return !onRbd && kernel !== undefined && kernel === layout.linux?.kernelPath && existsSync(kernel) && novaOwnership(xml).projectId === layout.projectId;
}

export async function ensureDemoInstance(uri: string, dataDir: string, options: DemoOptions = {}): Promise<DemoInstance | null> {
  const name = options.name ?? DEMO_INSTANCE_NAME;
  const client = await Libvirt.connect(uri);
  try {
    const domains = await client.connectListAllDomains(0);
    let existing = domains.find((d) => d.name === name);
    if (!existing && domains.length > 0 && !options.besideOtherDomains) return null;
    const spec = await demoSpec(client, dataDir, name, options.rbdDiskFor);
    const layout = planInstance(spec);
    if (existing && !(await isCurrentDemo(client, existing, layout))) {
      await removeInstance(client, layout);
      existing = undefined;
    }
    if (!existing) {
      const created = await createInstance(client, spec);
      return { name: created.name, uuid: created.domain.uuid, consolePath: layout.consolePath, startedByUs: true, ...(layout.rbd ? { rbdLayout: layout } : {}) };
    }
    const { state } = await client.domainGetState(existing);
    if (state === DomainState.Shutoff) await client.domainCreateWithFlags(existing, 0);
    return { name: existing.name, uuid: existing.uuid, consolePath: layout.consolePath, startedByUs: state === DomainState.Shutoff };
  } finally {
    await client.close();
  }
}

/** Shuts the demo guest off again (its definition and disks stay for the next run); an RBD demo is removed, disk and all, while its cluster is still up. */
export async function stopDemoInstance(uri: string, demo: DemoInstance): Promise<void> {
  if (!demo.startedByUs) return;
  const client = await Libvirt.connect(uri);
  try {
    if (demo.rbdLayout) {
      await removeInstance(client, demo.rbdLayout);
      return;
    }
    await client.domainDestroy(await client.domainLookupByName(demo.name));
  } catch (err) {
    // already gone or already off: nothing to stop
    if (!isLibvirtError(err, VIR_ERR_NO_DOMAIN, VIR_ERR_OPERATION_INVALID)) throw err;
  } finally {
    await client.close();
  }
}
