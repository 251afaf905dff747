// The cold path's guest handling (Nova's LibvirtDriver.snapshot around managedSave): detach PCI
// host devices and SR-IOV ports, managedSave; afterwards recreate the domain in its prior power
// state and re-attach. Both halves are idempotent so a retried or resumed activity converges.
// The save is marked in the run's work dir first (guest-markers.ts): a run that ends without its
// restore (terminated) leaves the host's sweep the guest to bring back (abandoned-guest.ts).
import {
  DomainState,
  isLibvirtError,
  VIR_DOMAIN_AFFECT_LIVE,
  VIR_DOMAIN_START_PAUSED,
  VIR_DOMAIN_XML_INACTIVE,
  VIR_ERR_NO_DOMAIN,
  type Domain,
  type Libvirt,
} from '../libvirt';
import { POWER_STATE_PAUSED, POWER_STATE_RUNNING, type PowerState } from '../contract';
import { missingPassthrough, parseDomainXml, type DomainFacts, type PassthroughDevice } from './domain-xml';
import { namedDomain, writeGuestMarker } from './guest-markers';

async function facts(client: Libvirt, dom: Domain, inactive: boolean): Promise<DomainFacts> {
  return parseDomainXml(await client.domainGetXMLDesc(dom, inactive ? VIR_DOMAIN_XML_INACTIVE : 0));
}

/** Nova's order for detaching and re-attaching: PCI host devices first, then SR-IOV ports. */
function inNovaOrder(devices: readonly PassthroughDevice[]): PassthroughDevice[] {
  return [...devices.filter((d) => d.kind === 'hostdev'), ...devices.filter((d) => d.kind === 'sriov-port')];
}

/**
 * Detaches passthrough devices (PCI first, then SR-IOV ports, as Nova does) and managed-saves,
 * having marked in `workDir` (the run's) that the run holds the guest saved, to return it to `powerState`.
 */
export async function saveGuestForColdSnapshot(client: Libvirt, dom: Domain, run: { workDir: string; powerState: PowerState }): Promise<{ detachedDevices: number; alreadySaved: boolean }> {
  // Before the save, so that no save of ours is ever unmarked; a retry that finds the guest saved rewrites the same.
  await writeGuestMarker(run.workDir, 'saved', { ...namedDomain(dom), powerState: run.powerState });
  const { state } = await client.domainGetState(dom);
  if (state === DomainState.Shutoff && (await client.domainHasManagedSaveImage(dom))) {
    return { detachedDevices: 0, alreadySaved: true };
  }
  const live = await facts(client, dom, false);
  const ordered = inNovaOrder(live.passthrough);
  for (const device of ordered) await client.domainDetachDeviceFlags(dom, device.xml, VIR_DOMAIN_AFFECT_LIVE);
  await client.domainManagedSave(dom, 0);
  return { detachedDevices: ordered.length, alreadySaved: false };
}

export interface RestoreOutcome {
  recreated: boolean;
  reattached: number;
  /** the domain no longer exists: the instance was deleted, nothing to restore */
  gone: boolean;
}

/**
 * Brings the guest back as it was before the snapshot: running or paused (from its managed-save
 * image when there is one), with every passthrough device of its persistent definition attached.
 * `resumePaused`: a guest that ran before and is paused now is resumed (its run restarted it paused).
 */
export async function restoreGuestState(client: Libvirt, domainName: string, prior: PowerState, options: { resumePaused?: boolean } = {}): Promise<RestoreOutcome> {
  let dom: Domain;
  try {
    dom = await client.domainLookupByName(domainName);
  } catch (err) {
    if (isLibvirtError(err, VIR_ERR_NO_DOMAIN)) return { recreated: false, reattached: 0, gone: true };
    throw err;
  }
  const wanted = prior === POWER_STATE_RUNNING || prior === POWER_STATE_PAUSED;
  let recreated = false;
  const { state } = await client.domainGetState(dom);
  if (wanted && (state === DomainState.Shutoff || state === DomainState.Shutdown || state === DomainState.Crashed)) {
    dom = await client.domainCreateWithFlags(dom, prior === POWER_STATE_PAUSED ? VIR_DOMAIN_START_PAUSED : 0);
    recreated = true;
  } else if (options.resumePaused === true && prior === POWER_STATE_RUNNING && state === DomainState.Paused) {
    // Restarted paused by the run (saved-guest-restart.ts) and not resumed before the run failed.
    await client.domainResume(dom);
    recreated = true;
  }
  if (!wanted) return { recreated, reattached: 0, gone: false };
  const missing = missingPassthrough(await facts(client, dom, true), await facts(client, dom, false));
  const ordered = inNovaOrder(missing);
  for (const device of ordered) await client.domainAttachDeviceFlags(dom, device.xml, VIR_DOMAIN_AFFECT_LIVE);
  return { recreated, reattached: ordered.length, gone: false };
}
