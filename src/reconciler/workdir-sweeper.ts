// Host worker start-up: removes snapshot work dirs (`snap-<runId>` under the snapshots directory)
// whose workflow run is closed. A run that is still open keeps its dir: its extract activity will
// be retried and wipes the dir itself, or its upload still needs the file. Nova leaves these
// behind forever (a full snapshots_directory is a classic failure).
//
// The dir name carries only the run id and Temporal describes a run only with its workflow id, so
// the extract activity writes the owner's workflow id into the dir (SnapshotWorkDirs.writeOwner).
// A dir without that marker (the process died between mkdir and the marker write) is looked up in
// visibility by RunId; one that visibility does not know either is removed only once it is older
// than `orphanAfterMs`, because visibility lags behind a run that has just started.
//
// A closed run's export outlives its worker too (a qemu-nbd daemon, a libvirt backup job serving
// on a socket in the dir), so with a `releaser` the sweep ends those before removing the dir, and
// then aborts the backup jobs still serving from a closed or vanished run's dir. Whatever cannot
// be released (libvirt unreachable) keeps its dir for the next start-up.
//
// A closed cold run terminated while it held its guest (managed-saved, or restarted paused from
// the save and not resumed) leaves a marker naming the guest (src/host/guest-markers.ts): the sweep
// ends the run's export, then brings the guest back in the power state the run found
// (src/host/abandoned-guest.ts), unless a newer run of the instance's snapshot workflow is open;
// that run found the guest saved or paused and leaves it so, so the dir and its marker stay until
// that run closes and a later sweep returns it. A guest saved or paused by an operator has no
// marker and is never touched.
import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import type { AbortedBackupJob, ExportReleaser } from '../host/orphan-exports';
import type { SnapshotWorkDirs } from '../host/snapshot-workdir';
import { holdsGuest } from '../host/guest-markers';
import { workflowIsOpen } from './open-snapshots';

export interface SweepOptions {
  client: Client;
  workDirs: SnapshotWorkDirs;
  log: Logger;
  /** age after which an unmarked dir unknown to visibility counts as abandoned (default 1 h) */
  orphanAfterMs?: number;
  now?: () => number;
  /** ends a closed run's exports before its dir goes (src/host/orphan-exports.ts); without it dirs are only removed */
  releaser?: ExportReleaser;
}

export interface SweepReport {
  removed: string[];
  kept: string[];
  /** run ids whose qemu-nbd export was stopped */
  stoppedExports: string[];
  abortedJobs: AbortedBackupJob[];
  /** guests a closed run had left saved or paused, brought back (started from the save, or resumed) */
  returnedGuests: string[];
}

type Verdict = 'open' | 'closed' | 'unknown';
interface Ownership {
  verdict: Verdict;
  /** the owning run's workflow id, when known */
  workflowId?: string;
}
const RUN_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export async function sweepClosedWorkDirs(options: SweepOptions): Promise<SweepReport> {
  const { client, workDirs, log } = options;
  const now = options.now ?? Date.now;
  const orphanAfterMs = options.orphanAfterMs ?? 60 * 60_000;
  const report: SweepReport = { removed: [], kept: [], stoppedExports: [], abortedJobs: [], returnedGuests: [] };
  for (const key of await workDirs.list()) {
    // Not a run id: not ours to judge (and never interpolated into a visibility query).
    if (!RUN_ID.test(key)) continue;
    try {
      const ownership = await ownerVerdict(client, workDirs, key);
      let verdict = ownership.verdict;
      if (verdict === 'unknown') {
        const modified = await workDirs.modifiedAt(key);
        verdict = modified !== undefined && now() - modified >= orphanAfterMs ? 'closed' : 'open';
      }
      if (verdict === 'open') {
        report.kept.push(key);
        continue;
      }
      let heldGuest = false;
      if (options.releaser !== undefined) {
        const dir = workDirs.pathFor(key);
        heldGuest = await heldForNewerRun(client, dir, ownership.workflowId);
        // Before the guest comes back, as the run's own close comes before its restore: QEMU needs
        // the disk's write lock, which the closed run's qemu-nbd holds.
        const released = await options.releaser.releaseDir(dir);
        if (released.stoppedExport) report.stoppedExports.push(key);
        report.abortedJobs.push(...released.abortedJobs);
        if (!heldGuest) await returnHeldGuest(options.releaser, dir, report);
      }
      // Without a releaser nobody here can bring a held guest back: its marker keeps the dir.
      if (heldGuest || !(await workDirs.remove(key))) {
        report.kept.push(key);
        continue;
      }
      report.removed.push(key);
      log.info({ run_id: key }, 'removed the work dir of a closed snapshot run');
    } catch (err) {
      // Temporal or libvirt unreachable at start-up: keep the dir; the next start-up (or the run) handles it.
      report.kept.push(key);
      log.warn({ err, run_id: key }, 'could not tell whether a work dir is abandoned, or release what it holds; kept it');
    }
  }
  if (options.releaser !== undefined) await abortVanishedRunJobs(options.releaser, workDirs, report, log);
  return report;
}

/**
 * Jobs serving from a `snap-<runId>` dir that this sweep removed, or that is gone (removed by hand,
 * or wiped with the jobs still running): nobody reads them. A dir kept above, or made since the
 * listing, is an open run's.
 */
async function abortVanishedRunJobs(releaser: ExportReleaser, workDirs: SnapshotWorkDirs, report: SweepReport, log: Logger): Promise<void> {
  const removed = new Set(report.removed);
  const kept = new Set(report.kept);
  const isClosed = async (runId: string): Promise<boolean> => removed.has(runId) || (!kept.has(runId) && (await workDirs.modifiedAt(runId)) === undefined);
  try {
    const aborted = await releaser.abortJobsUnder(workDirs.root, isClosed);
    report.abortedJobs.push(...aborted);
    for (const job of aborted) log.info({ domain: job.domain, socket: job.socketPath }, 'aborted a backup job left by a closed snapshot run');
  } catch (err) {
    log.warn({ err }, 'could not look for backup jobs left by closed snapshot runs');
  }
}

/**
 * True when the closed run's dir holds its guest (saved or paused) and a newer run of the same
 * workflow (the instance's) is open: the guest stays as it is for that run, and the dir with it.
 */
async function heldForNewerRun(client: Client, dir: string, workflowId: string | undefined): Promise<boolean> {
  return holdsGuest(dir) && workflowId !== undefined && (await workflowIsOpen(client, workflowId));
}

/** Brings back the guest a closed run left saved or paused, when its dir names one. */
async function returnHeldGuest(releaser: ExportReleaser, dir: string, report: SweepReport): Promise<void> {
  if (!holdsGuest(dir)) return;
  const returned = await releaser.returnAbandonedGuest(dir);
  if (returned !== null && returned.outcome !== 'left as found') report.returnedGuests.push(returned.domainName);
}

async function ownerVerdict(client: Client, workDirs: SnapshotWorkDirs, runId: string): Promise<Ownership> {
  const owner = await workDirs.readOwner(runId);
  if (owner !== undefined) return { verdict: (await workflowIsOpen(client, owner.workflowId, owner.runId)) ? 'open' : 'closed', workflowId: owner.workflowId };
  // runId matched RUN_ID above, so it is safe inside the query string.
  for await (const run of client.workflow.list({ query: `RunId = '${runId}'` })) {
    return { verdict: (await workflowIsOpen(client, run.workflowId, run.runId)) ? 'open' : 'closed', workflowId: run.workflowId };
  }
  return { verdict: 'unknown' };
}
