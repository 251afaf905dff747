// The sweep's half of the guest markers (guest-markers.ts): a closed cold run that never brought its
// guest back (terminated after the managedSave, or between the restart paused and the resume) has
// its guest brought back as the run's own restore would have, in the power state it found. Only
// while the guest is still as the run left it: managed-saved (shut off with a save image), or
// paused after the run's restart. A guest started, shut down or deleted since is someone else's
// business now; its marker goes all the same.
import { DomainState, isLibvirtError, VIR_ERR_NO_DOMAIN, type Domain, type Libvirt } from '../libvirt';
import { POWER_STATE_RUNNING } from '../contract';
import { restoreGuestState } from './cold-snapshot';
import { readGuestMarker, removeGuestMarkers, type GuestMarker } from './guest-markers';

export type AbandonedGuestOutcome = 'started from its save' | 'resumed' | 'left as found';

export interface ReturnedGuest {
  domainName: string;
  outcome: AbandonedGuestOutcome;
}

/**
 * Brings back the guest the work dir's closed run holds: the caller has made sure no snapshot run
 * owns the instance now. Null when the dir holds no marker or the domain is gone; otherwise what
 * was done. The markers go once the guest is not the run's to hold; a failure keeps them.
 */
export async function returnAbandonedGuest(client: Libvirt, workDir: string): Promise<ReturnedGuest | null> {
  const saved = await readGuestMarker(workDir, 'saved');
  const restarted = await readGuestMarker(workDir, 'restartedPaused');
  const named: GuestMarker<'restartedPaused'> | null = saved ?? restarted;
  if (named === null) return null;
  let dom: Domain;
  try {
    dom = await client.domainLookupByUUID(named.domainUuid);
  } catch (err) {
    if (!isLibvirtError(err, VIR_ERR_NO_DOMAIN)) throw err;
    // The instance was deleted meanwhile: nothing to bring back.
    await removeGuestMarkers(workDir);
    return null;
  }
  const outcome = await returnIfAsLeft(client, dom, saved, restarted !== null);
  await removeGuestMarkers(workDir);
  return { domainName: dom.name, outcome };
}

async function returnIfAsLeft(client: Libvirt, dom: Domain, saved: GuestMarker<'saved'> | null, restarted: boolean): Promise<AbandonedGuestOutcome> {
  const { state } = await client.domainGetState(dom);
  // The restart path only ever takes a guest that ran; a marker from before the saved one says no more.
  const prior = saved?.powerState ?? POWER_STATE_RUNNING;
  if (restarted && state === DomainState.Paused) {
    const { recreated } = await restoreGuestState(client, dom.name, prior, { resumePaused: true });
    return recreated ? 'resumed' : 'left as found';
  }
  if (saved !== null && state === DomainState.Shutoff && (await client.domainHasManagedSaveImage(dom))) {
    const { recreated } = await restoreGuestState(client, dom.name, prior);
    return recreated ? 'started from its save' : 'left as found';
  }
  return 'left as found';
}
