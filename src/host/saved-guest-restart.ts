// The cold point in time without the cold downtime (issue 25): the guest, managed-saved as the
// seed saves it, is started again paused from its save image, libvirt's pull-mode backup job (the
// live path's, src/host/backup-export.ts) begins on its disk before the guest has run one
// instruction since the save, and the guest resumes once the export is recorded. The job's
// copy-before-write keeps the save's data for the stream while the guest writes on, so the guest
// is down for the save and the restore, not for the stream; the image is the disk at the save.
//
// A marker in the work dir says "this run restarted the guest paused and has not resumed it": a
// retried step (a new host worker after a kill) may then cut again from the paused guest, whose
// disk is still the save's, and the resume is never applied to a guest paused by someone else.
// The marker (guest-markers.ts) names the domain, so that a run that closed without resuming
// (terminated between the restart and the resume) has its guest resumed by the host's sweep
// (abandoned-guest.ts, src/reconciler/workdir-sweeper.ts).
import { DomainState, type Domain, type Libvirt } from '../libvirt';
import { VIR_DOMAIN_START_PAUSED } from '../libvirt';
import { errorMessage } from '../contract';
import { beginBackupExport, type BackupJobRef } from './backup-export';
import { holdsGuest, namedDomain, removeGuestMarkers, writeGuestMarker } from './guest-markers';

export interface SavedGuestContext {
  client: Libvirt;
  dom: Domain;
  workDir: string;
  diskTarget: string;
  quiesceTimeoutMs: number;
  log?: (message: string, fields: Record<string, unknown>) => void;
}

/**
 * The backup job on the guest restarted paused from its managed save, or null when the cut is the
 * stopped disk's after all: no save image to start from (the guest was shut off, or already runs),
 * or a job refused (the guest is then saved again, never resumed, so its disk is still the save's).
 */
export async function beginOnRestartedGuest(ctx: SavedGuestContext): Promise<BackupJobRef | null> {
  const { client, workDir } = ctx;
  const { state } = await client.domainGetState(ctx.dom);
  let dom = ctx.dom;
  if (state === DomainState.Shutoff && (await client.domainHasManagedSaveImage(dom))) {
    // Before the start: a worker killed right after it must know the pause is this run's.
    await writeGuestMarker(workDir, 'restartedPaused', namedDomain(dom));
    dom = await client.domainCreateWithFlags(dom, VIR_DOMAIN_START_PAUSED);
  } else if (!(state === DomainState.Paused && holdsGuest(workDir, 'restartedPaused'))) {
    return null;
  }
  try {
    // Paused: no agent answers a freeze, and nothing in the guest can write.
    const { job } = await beginBackupExport(client, dom, workDir, { diskTarget: ctx.diskTarget, quiesceTimeoutMs: ctx.quiesceTimeoutMs, freeze: false, log: ctx.log });
    return job;
  } catch (err) {
    ctx.log?.('backup job on the restarted guest refused: saved again, its stopped disk is read', { error: errorMessage(err) });
    await client.domainManagedSave(dom, 0);
    await removeGuestMarkers(workDir, 'restartedPaused');
    return null;
  }
}

/** Resumes the guest this run restarted paused (once its export is recorded); idempotent. */
export async function resumeRestartedGuest(client: Libvirt, dom: Domain, workDir: string): Promise<void> {
  if (!holdsGuest(workDir, 'restartedPaused')) return;
  const { state } = await client.domainGetState(dom);
  if (state === DomainState.Paused) await client.domainResume(dom);
  await removeGuestMarkers(workDir, 'restartedPaused');
}
