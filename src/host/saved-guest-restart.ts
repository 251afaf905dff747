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
// The marker names the domain, so that a run that closed without resuming (terminated between the
// restart and the resume) has its guest resumed by the host's sweep (src/reconciler/workdir-sweeper.ts).
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { z } from 'zod';
import { DomainState, isLibvirtError, VIR_ERR_NO_DOMAIN, type Domain, type Libvirt } from '../libvirt';
import { VIR_DOMAIN_START_PAUSED } from '../libvirt';
import { errnoCode, errorMessage } from '../contract';
import { beginBackupExport, type BackupJobRef } from './backup-export';
import { exportPaths } from './export-paths';

const RestartMarkerSchema = z.object({ domainUuid: z.string().uuid(), domainName: z.string().min(1).max(255) });
type RestartMarker = z.infer<typeof RestartMarkerSchema>;

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
  const marker = exportPaths(workDir).restartedGuest;
  const { state } = await client.domainGetState(ctx.dom);
  let dom = ctx.dom;
  if (state === DomainState.Shutoff && (await client.domainHasManagedSaveImage(dom))) {
    // Before the start: a worker killed right after it must know the pause is this run's.
    await writeRestartMarker(workDir, dom);
    dom = await client.domainCreateWithFlags(dom, VIR_DOMAIN_START_PAUSED);
  } else if (!(state === DomainState.Paused && existsSync(marker))) {
    return null;
  }
  try {
    // Paused: no agent answers a freeze, and nothing in the guest can write.
    const { job } = await beginBackupExport(client, dom, workDir, { diskTarget: ctx.diskTarget, quiesceTimeoutMs: ctx.quiesceTimeoutMs, freeze: false, log: ctx.log });
    return job;
  } catch (err) {
    ctx.log?.('backup job on the restarted guest refused: saved again, its stopped disk is read', { error: errorMessage(err) });
    await client.domainManagedSave(dom, 0);
    await rm(marker, { force: true });
    return null;
  }
}

/** Resumes the guest this run restarted paused (once its export is recorded); idempotent. */
export async function resumeRestartedGuest(client: Libvirt, dom: Domain, workDir: string): Promise<void> {
  const marker = exportPaths(workDir).restartedGuest;
  if (!existsSync(marker)) return;
  const { state } = await client.domainGetState(dom);
  if (state === DomainState.Paused) await client.domainResume(dom);
  await rm(marker, { force: true });
}

/** Marks the guest as restarted paused by the work dir's run (written before the restart). */
export async function writeRestartMarker(workDir: string, dom: Domain): Promise<void> {
  const named: RestartMarker = { domainUuid: dom.uuid, domainName: dom.name };
  await writeFile(exportPaths(workDir).restartedGuest, `${JSON.stringify(named)}\n`, { mode: 0o600 });
}

/** The domain the work dir's run restarted paused and has not resumed, or null when it holds no marker. */
export async function readRestartMarker(workDir: string): Promise<RestartMarker | null> {
  let named: unknown;
  try {
    named = JSON.parse(await readFile(exportPaths(workDir).restartedGuest, 'utf8'));
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return null;
    named = undefined;
  }
  const parsed = RestartMarkerSchema.safeParse(named);
  // Kept for an operator to look at: which guest it held is not known.
  if (!parsed.success) throw new Error(`the restart marker in ${workDir} does not name a domain`);
  return parsed.data;
}

/**
 * Resumes the guest a closed run restarted paused and never resumed (terminated between the restart
 * and the resume): the caller has made sure no snapshot run owns the instance now. Returns the
 * domain's name when it resumed it; the marker goes either way once the guest is not ours to hold.
 */
export async function resumeAbandonedRestart(client: Libvirt, workDir: string): Promise<string | null> {
  const marker = await readRestartMarker(workDir);
  if (marker === null) return null;
  let dom: Domain;
  try {
    dom = await client.domainLookupByUUID(marker.domainUuid);
  } catch (err) {
    if (!isLibvirtError(err, VIR_ERR_NO_DOMAIN)) throw err;
    // The instance was deleted meanwhile: nothing to resume.
    await rm(exportPaths(workDir).restartedGuest, { force: true });
    return null;
  }
  const { state } = await client.domainGetState(dom);
  if (state === DomainState.Paused) await client.domainResume(dom);
  await rm(exportPaths(workDir).restartedGuest, { force: true });
  return state === DomainState.Paused ? dom.name : null;
}
