// Releases what a snapshot run's export holds on this host once nobody will read it: the cold
// path's qemu-nbd daemon, and the live path's libvirt pull-backup job. Both outlive the host worker
// that started them (that is what lets a retried step re-attach), so a run that closed while no
// worker was there leaves them behind; a backup job left running blocks every other job on the
// domain, managedSave among them, and keeps its copy-before-write scratch file growing.
//
// A guest the cold path managed-saved, or restarted paused from its save, is left so by a run
// terminated before its restore or its resume; the sweep brings it back here (abandoned-guest.ts)
// once no snapshot run owns the instance.
//
// A job is recognised as a run's by where it serves: its NBD socket lies in the run's work dir
// (exportPaths(workDir).socketPath). Jobs whose socket lies anywhere else are never touched.
import path from 'node:path';
import type { Logger } from 'pino';
import { VIR_CONNECT_LIST_DOMAINS_ACTIVE, type Domain, type Libvirt } from '../libvirt';
import { abortBackupJob, currentBackupJob } from './backup-export';
import { BackupXmlError } from './backup-xml';
import { exportPaths, isInside, workDirRunIdOf } from './export-paths';
import { stopReadOnlyExport } from './nbd-export';
import { returnAbandonedGuest, type ReturnedGuest } from './abandoned-guest';

export interface AbortedBackupJob {
  domain: string;
  socketPath: string;
}

export interface ReleaseReport {
  /** a qemu-nbd export was running and was stopped */
  stoppedExport: boolean;
  abortedJobs: AbortedBackupJob[];
}

/** What the start-up sweep needs to free a work dir before removing it; a fake in tests. */
export interface ExportReleaser {
  /** Stops the dir's qemu-nbd and aborts every backup job serving a socket inside `dir`. */
  releaseDir(dir: string): Promise<ReleaseReport>;
  /**
   * Aborts every backup job serving a socket inside a `snap-<runId>` dir under `root` for which
   * `isClosed(runId)` answers true (the dir may be gone already).
   */
  abortJobsUnder(root: string, isClosed: (runId: string) => Promise<boolean>): Promise<AbortedBackupJob[]>;
  /**
   * Brings back the guest the dir's closed cold run holds (saved, or restarted paused: its marker,
   * guest-markers.ts) when it is still as the run left it; the caller knows no snapshot run owns
   * the instance now. Null when the dir names no guest, or its domain is gone.
   */
  returnAbandonedGuest(dir: string): Promise<ReturnedGuest | null>;
}

interface RunningBackup {
  dom: Domain;
  socketPath: string;
}

export interface LibvirtExportReleaserOptions {
  log?: Logger;
  /** how long to wait for QEMU to remove the socket after the abort (default 5 s) */
  socketGoneTimeoutMs?: number;
}

/** The ExportReleaser of a host worker: qemu-nbd through its pid file, jobs through libvirt. */
export class LibvirtExportReleaser implements ExportReleaser {
  constructor(
    /** the host worker's LibvirtSession (or anything that hands out a connected client) */
    private readonly session: { client(): Promise<Libvirt> },
    private readonly options: LibvirtExportReleaserOptions = {},
  ) {}

  async releaseDir(dir: string): Promise<ReleaseReport> {
    const { stopped } = await stopReadOnlyExport(exportPaths(dir));
    const abortedJobs: AbortedBackupJob[] = [];
    for (const job of await this.runningBackups()) {
      if (isInside(dir, job.socketPath) && (await this.abort(job, dir))) abortedJobs.push({ domain: job.dom.name, socketPath: job.socketPath });
    }
    return { stoppedExport: stopped, abortedJobs };
  }

  async returnAbandonedGuest(dir: string): Promise<ReturnedGuest | null> {
    const returned = await returnAbandonedGuest(await this.session.client(), dir);
    if (returned !== null) this.options.log?.info({ domain: returned.domainName, outcome: returned.outcome }, 'swept the guest a closed snapshot run held');
    return returned;
  }

  async abortJobsUnder(root: string, isClosed: (runId: string) => Promise<boolean>): Promise<AbortedBackupJob[]> {
    const aborted: AbortedBackupJob[] = [];
    for (const job of await this.runningBackups()) {
      const runId = workDirRunIdOf(root, job.socketPath);
      if (runId === undefined || !(await isClosed(runId))) continue;
      const workDir = path.join(path.normalize(root), `snap-${runId}`);
      if (await this.abort(job, workDir)) aborted.push({ domain: job.dom.name, socketPath: job.socketPath });
    }
    return aborted;
  }

  /** The backup job of every running domain that has one and serves on a unix socket. */
  private async runningBackups(): Promise<RunningBackup[]> {
    const client = await this.session.client();
    const found: RunningBackup[] = [];
    // Only a running domain can hold a job.
    for (const dom of await client.connectListAllDomains(VIR_CONNECT_LIST_DOMAINS_ACTIVE)) {
      const job = await this.backupOf(client, dom);
      if (job !== null) found.push(job);
    }
    return found;
  }

  private async backupOf(client: Libvirt, dom: Domain): Promise<RunningBackup | null> {
    try {
      const job = await currentBackupJob(client, dom);
      return job === null || job.socketPath === null ? null : { dom, socketPath: job.socketPath };
    } catch (err) {
      // A job we cannot read is not one we can tell is ours: it stays.
      if (!(err instanceof BackupXmlError)) throw err;
      this.options.log?.warn({ err, domain: dom.name }, 'backup job description unreadable; left running');
      return null;
    }
  }

  /** Aborts the job when the domain still runs this one, and removes what it left in `workDir`. */
  private async abort(job: RunningBackup, workDir: string): Promise<boolean> {
    const aborted = await abortBackupJob(await this.session.client(), job.dom, job.socketPath, workDir, { socketGoneTimeoutMs: this.options.socketGoneTimeoutMs });
    if (aborted) this.options.log?.info({ domain: job.dom.name, socket: job.socketPath }, 'aborted the backup job of a closed snapshot run');
    return aborted;
  }
}
