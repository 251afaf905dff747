// The live point-in-time export: a libvirt pull-mode backup job (virDomainBackupBegin) serving the
// root disk over NBD on a unix socket in the run's work dir, with a scratch qcow2 that receives the
// old data of every block the guest overwrites while the copy runs. The guest is frozen only for
// the instant the job starts. The job belongs to QEMU, not to this process: it outlives a killed
// host worker, and a retried step re-attaches to it by its socket path.
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { isLibvirtError, VIR_ERR_NO_DOMAIN, VIR_ERR_NO_DOMAIN_BACKUP, VIR_ERR_OPERATION_INVALID, type Domain, type Libvirt } from '../libvirt';
import { buildCheckpointXml, buildPullBackupXml, parseBackupXml } from './backup-xml';
import { exportPaths, isInside } from './export-paths';
import { abortBlockJobQuietly } from './live-snapshot';
import { withQuiescedGuest, type QuiesceOutcome } from './quiesce';

/** The name an incremental job's export advertises its changes under: qemu:dirty-bitmap:<this>. */
export const EXPORT_BITMAP = 'snap-changes';

/** Another backup job holds the domain (one per domain): an orphan the sweep will abort, or an operator's. */
export class BackupJobBusy extends Error {
  override readonly name = 'BackupJobBusy';
  readonly retryable = true;
}

export interface BackupJobRef {
  /** the NBD server's unix socket, null when the job serves over TCP */
  socketPath: string | null;
  exportName: string;
  /** every scratch file (or device) of the job's disks */
  scratchFiles: string[];
  /** the targets (vda …) of the disks the job backs up */
  diskTargets: string[];
}

/** How long an aborted job may take before libvirt is nudged to process its end (see abortBackupJob). */
const NUDGE_AFTER_MS = 500;

/**
 * The domain's backup job, or null when it has none (no job, or the domain stopped or went since
 * it was looked up). A description libvirt sends that we cannot read throws BackupXmlError.
 */
export async function currentBackupJob(client: Libvirt, dom: Domain): Promise<BackupJobRef | null> {
  let xml: string;
  try {
    xml = await client.backup.getXMLDesc(dom);
  } catch (err) {
    if (isLibvirtError(err, VIR_ERR_NO_DOMAIN_BACKUP, VIR_ERR_OPERATION_INVALID, VIR_ERR_NO_DOMAIN)) return null;
    throw err;
  }
  const job = parseBackupXml(xml);
  const disk = job.disks.find((d) => d.backup);
  return {
    socketPath: job.socketPath,
    exportName: disk?.exportName ?? disk?.target ?? '',
    scratchFiles: job.disks.flatMap((d) => (d.scratch === null ? [] : [d.scratch])),
    diskTargets: job.disks.filter((d) => d.backup).map((d) => d.target),
  };
}

export interface AbortOptions {
  /** how long to wait for QEMU to remove the socket after the abort (default 5 s) */
  socketGoneTimeoutMs?: number;
  /** leave the socket and scratch files: the caller removes the whole work dir afterwards */
  keepFiles?: boolean;
}

/**
 * Aborts the domain's job if it still serves on `socketPath` (it may have ended, and another begun,
 * since it was looked at), waits for QEMU to remove the socket, then removes the socket and any
 * scratch file left inside `workDir` (libvirt deletes the scratch files it made; one made with
 * REUSE_EXTERNAL stays), unless `keepFiles`. False when there was no such job any more.
 */
export async function abortBackupJob(client: Libvirt, dom: Domain, socketPath: string, workDir: string, options: AbortOptions = {}): Promise<boolean> {
  const socketGoneTimeoutMs = options.socketGoneTimeoutMs ?? 5_000;
  const job = await currentBackupJob(client, dom);
  if (job === null || job.socketPath !== socketPath) return false;
  try {
    await client.jobs.abort(dom);
  } catch (err) {
    // Ended between the look and the abort: the normal answers of a job already gone.
    if (isLibvirtError(err, VIR_ERR_OPERATION_INVALID, VIR_ERR_NO_DOMAIN_BACKUP, VIR_ERR_NO_DOMAIN)) return false;
    throw err;
  }
  const abortedAt = Date.now();
  const deadline = abortedAt + socketGoneTimeoutMs;
  let nudged = false;
  while (existsSync(socketPath) && Date.now() < deadline) {
    if (!nudged && Date.now() - abortedAt > NUDGE_AFTER_MS) {
      // libvirt 9.0 leaves the job of a domain restored paused from its save (saved-guest-restart.ts)
      // concluded in QEMU but never ended; a blockJobAbort on its disk makes libvirt process the end
      // (it answers "still being ended", which is the point).
      nudged = true;
      for (const target of job.diskTargets) await abortBlockJobQuietly(client, dom, target);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  if (options.keepFiles !== true) {
    for (const file of [socketPath, ...job.scratchFiles]) if (isInside(workDir, file)) await rm(file, { force: true });
  }
  return true;
}

/** Our job when the domain runs one on this work dir's socket and QEMU still serves it. */
export async function findBackupExport(client: Libvirt, dom: Domain, workDir: string): Promise<BackupJobRef | null> {
  const job = await currentBackupJob(client, dom);
  const { socketPath } = exportPaths(workDir);
  return job !== null && job.socketPath === socketPath && existsSync(socketPath) ? job : null;
}

export interface BeginBackupOptions {
  diskTarget: string;
  quiesceTimeoutMs: number;
  /** a checkpoint taken at the same instant (the next snapshot's starting point) */
  checkpoint?: string;
  /** an incremental: the checkpoint whose changes since are exported as the dirty bitmap EXPORT_BITMAP */
  incrementalFrom?: string;
  log?: (message: string, fields: Record<string, unknown>) => void;
  /** false: the guest is paused (a restarted cold guest) and no agent can answer; nothing is frozen */
  freeze?: boolean;
}

/** Starts the job with the guest frozen around the start; a job of ours left from an earlier attempt is ended first. */
export async function beginBackupExport(client: Libvirt, dom: Domain, workDir: string, options: BeginBackupOptions): Promise<{ job: BackupJobRef; quiesce: QuiesceOutcome }> {
  const paths = exportPaths(workDir);
  const existing = await currentBackupJob(client, dom);
  if (existing !== null) {
    if (existing.socketPath !== paths.socketPath) {
      throw new BackupJobBusy(`domain ${dom.name} already runs a backup job serving ${existing.socketPath ?? 'over TCP'}; one job per domain`);
    }
    // Ours, but of an attempt whose record was lost: its point in time is unknown, so it goes.
    await endBackupExport(client, dom, workDir);
  }
  const scratchFile = paths.scratchFile(options.diskTarget);
  await rm(scratchFile, { force: true });
  const incremental = options.incrementalFrom !== undefined ? { incrementalFrom: options.incrementalFrom } : {};
  const bitmap = options.incrementalFrom !== undefined ? { exportBitmap: EXPORT_BITMAP } : {};
  const xml = buildPullBackupXml({ socketPath: paths.socketPath, ...incremental, disks: [{ target: options.diskTarget, scratchFile, ...bitmap }] });
  const checkpointXml = options.checkpoint === undefined ? null : buildCheckpointXml({ name: options.checkpoint, disks: [{ target: options.diskTarget }] });
  const begin = () => client.backup.begin(dom, xml, checkpointXml);
  let quiesce: QuiesceOutcome = { quiesced: false, freezeWindowMs: null };
  if (options.freeze === false) await begin();
  else ({ quiesce } = await withQuiescedGuest(client, dom, { timeoutMs: options.quiesceTimeoutMs, log: options.log }, begin));
  return { job: { socketPath: paths.socketPath, exportName: options.diskTarget, scratchFiles: [scratchFile], diskTargets: [options.diskTarget] }, quiesce };
}

/** Ends our job (never another's) and what it left in the work dir; idempotent. */
export async function endBackupExport(client: Libvirt, dom: Domain, workDir: string): Promise<{ aborted: boolean }> {
  return { aborted: await abortBackupJob(client, dom, exportPaths(workDir).socketPath, workDir) };
}
