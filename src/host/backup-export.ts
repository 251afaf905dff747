// The live point-in-time export: a libvirt pull-mode backup job (virDomainBackupBegin) serving the
// root disk over NBD on a unix socket in the run's work dir, with a scratch qcow2 that receives the
// old data of every block the guest overwrites while the copy runs. The guest is frozen only for
// the instant the job starts. The job belongs to QEMU, not to this process: it outlives a killed
// host worker, and a retried step re-attaches to it by its socket path.
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { isLibvirtError, VIR_ERR_NO_DOMAIN_BACKUP, VIR_ERR_OPERATION_INVALID, type Domain, type Libvirt } from '../libvirt';
import { buildPullBackupXml, parseBackupXml } from './backup-xml';
import { exportPaths } from './export-paths';
import { withQuiescedGuest, type QuiesceOutcome } from './quiesce';

/** Another backup job holds the domain (one per domain): an orphan the sweep will abort, or an operator's. */
export class BackupJobBusy extends Error {
  override readonly name = 'BackupJobBusy';
  readonly retryable = true;
}

export interface BackupJobRef {
  socketPath: string;
  exportName: string;
  scratchFile: string | null;
}

/** The domain's backup job, or null when it has none. */
export async function currentBackupJob(client: Libvirt, dom: Domain): Promise<BackupJobRef | null> {
  let xml: string;
  try {
    xml = await client.backup.getXMLDesc(dom);
  } catch (err) {
    if (isLibvirtError(err, VIR_ERR_NO_DOMAIN_BACKUP)) return null;
    throw err;
  }
  const job = parseBackupXml(xml);
  const disk = job.disks.find((d) => d.backup);
  return { socketPath: job.socketPath ?? '', exportName: disk?.exportName ?? disk?.target ?? '', scratchFile: disk?.scratch ?? null };
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
  log?: (message: string, fields: Record<string, unknown>) => void;
}

/** Starts the job with the guest frozen around the start; a job of ours left from an earlier attempt is ended first. */
export async function beginBackupExport(client: Libvirt, dom: Domain, workDir: string, options: BeginBackupOptions): Promise<{ job: BackupJobRef; quiesce: QuiesceOutcome }> {
  const paths = exportPaths(workDir);
  const existing = await currentBackupJob(client, dom);
  if (existing !== null) {
    if (existing.socketPath !== paths.socketPath) {
      throw new BackupJobBusy(`domain ${dom.name} already runs a backup job serving ${existing.socketPath || 'no socket'}; one job per domain`);
    }
    // Ours, but of an attempt whose record was lost: its point in time is unknown, so it goes.
    await endBackupExport(client, dom, workDir);
  }
  const scratchFile = paths.scratchFile(options.diskTarget);
  await rm(scratchFile, { force: true });
  const xml = buildPullBackupXml({ socketPath: paths.socketPath, disks: [{ target: options.diskTarget, scratchFile }] });
  const { quiesce } = await withQuiescedGuest(client, dom, { timeoutMs: options.quiesceTimeoutMs, log: options.log }, () => client.backup.begin(dom, xml));
  return { job: { socketPath: paths.socketPath, exportName: options.diskTarget, scratchFile }, quiesce };
}

/**
 * Ends our job (never another's) and waits until QEMU has removed its socket and libvirt its
 * scratch file; removes the scratch file itself when libvirt did not. Idempotent.
 */
export async function endBackupExport(client: Libvirt, dom: Domain, workDir: string): Promise<{ aborted: boolean }> {
  const paths = exportPaths(workDir);
  const job = await currentBackupJob(client, dom);
  let aborted = false;
  if (job !== null && job.socketPath === paths.socketPath) {
    try {
      await client.jobs.abort(dom);
      aborted = true;
    } catch (err) {
      // The job ended between the look and the abort.
      if (!isLibvirtError(err, VIR_ERR_OPERATION_INVALID)) throw err;
    }
    await waitUntilGone(paths.socketPath, 5_000);
    if (job.scratchFile !== null && job.scratchFile.startsWith(`${workDir}/`)) await rm(job.scratchFile, { force: true });
  }
  return { aborted };
}

async function waitUntilGone(file: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (existsSync(file) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  await rm(file, { force: true });
}
