// `npm start` on a host with no domains defines one small demo instance (Nova's disk layout: base
// + overlay with known content) so the main job can be tried at once. It is kept between runs.
import { join } from 'node:path';
import { createInstance } from '../testing/instance-lifecycle';
import { DomainState, Libvirt, LibvirtError, VIR_ERR_NO_DOMAIN, VIR_ERR_OPERATION_INVALID } from '../libvirt';

export const DEMO_INSTANCE_NAME = 'demo-instance';

export interface DemoInstance {
  name: string;
  uuid: string;
  /** true when this run started the guest (and so shuts it off again on exit) */
  startedByUs: boolean;
}

export async function ensureDemoInstance(uri: string, dataDir: string): Promise<DemoInstance | null> {
  const client = await Libvirt.connect(uri);
  try {
    const domains = await client.connectListAllDomains(0);
    const existing = domains.find((d) => d.name === DEMO_INSTANCE_NAME);
    if (!existing && domains.length > 0) return null;
    if (!existing) {
      const created = await createInstance(client, { name: DEMO_INSTANCE_NAME, dir: join(dataDir, 'demo') });
      return { name: created.name, uuid: created.domain.uuid, startedByUs: true };
    }
    const { state } = await client.domainGetState(existing);
    if (state === DomainState.Shutoff) await client.domainCreateWithFlags(existing, 0);
    return { name: existing.name, uuid: existing.uuid, startedByUs: state === DomainState.Shutoff };
  } finally {
    await client.close();
  }
}

/** Shuts the demo guest off again (its definition and disks stay for the next run). */
export async function stopDemoInstance(uri: string, demo: DemoInstance): Promise<void> {
  if (!demo.startedByUs) return;
  const client = await Libvirt.connect(uri);
  try {
    await client.domainDestroy(await client.domainLookupByName(demo.name));
  } catch (err) {
    // already gone or already off: nothing to stop
    if (!(err instanceof LibvirtError && (err.code === VIR_ERR_NO_DOMAIN || err.code === VIR_ERR_OPERATION_INVALID))) throw err;
  } finally {
    await client.close();
  }
}
