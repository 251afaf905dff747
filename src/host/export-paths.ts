// Where a snapshot run's point-in-time export lives inside its work dir (`<snapshotsDir>/snap-<runId>/`).
// One module names these files so that the live path (libvirt backup job), the cold path
// (qemu-nbd) and the start-up sweep that releases what a closed run left all agree on them.
import path from 'node:path';
import { assertDiskTarget } from './backup-xml';
import { assertSafePath } from '../fs/safe-path';

/** NBD unix socket: the backup job's (QEMU creates it) or qemu-nbd's; one export per run. */
export const EXPORT_SOCKET_NAME = 'export.sock';
/** qemu-nbd --pid-file of the cold path's export. */
export const QEMU_NBD_PID_NAME = 'qemu-nbd.pid';
/** Present while a cold run's guest, restarted paused from its save, has not been resumed yet. */
export const RESTARTED_GUEST_NAME = 'restarted-paused';
/** Present from before a cold run's managedSave until its guest is back in its prior power state. */
export const SAVED_GUEST_NAME = 'saved-guest';
/** The markers of a guest the run holds (src/host/guest-markers.ts): kept while the run's files go. */
export const GUEST_MARKER_NAMES: readonly string[] = [RESTARTED_GUEST_NAME, SAVED_GUEST_NAME];

export interface ExportPaths {
  socketPath: string;
  pidFile: string;
  /** marks the guest restarted paused by this run and not resumed since (src/host/saved-guest-restart.ts) */
  restartedGuest: string;
  /** marks the guest managed-saved by this run and not brought back since (src/host/guest-markers.ts) */
  savedGuest: string;
  /** the backup job's copy-before-write qcow2 for one disk (libvirt creates and deletes it) */
  scratchFile(target: string): string;
}

export function exportPaths(workDir: string): ExportPaths {
  assertSafePath(workDir);
  return {
    socketPath: path.join(workDir, EXPORT_SOCKET_NAME),
    pidFile: path.join(workDir, QEMU_NBD_PID_NAME),
    restartedGuest: path.join(workDir, RESTARTED_GUEST_NAME),
    savedGuest: path.join(workDir, SAVED_GUEST_NAME),
    scratchFile: (target) => path.join(workDir, `scratch-${assertDiskTarget(target)}.qcow2`),
  };
}

/**
 * The work dirs' naming (`snap-<runId>`), as SnapshotWorkDirs.pathFor spells it; a unit test holds
 * the two together. Read here from paths libvirt reports, so the sweep can tell whose job it is.
 */
const WORK_DIR_NAME_RE = /^snap-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/i;

/** True when `file` lies strictly inside `dir` (both absolute; no `..` tricks survive normalize). */
export function isInside(dir: string, file: string): boolean {
  const rel = path.relative(path.normalize(dir), path.normalize(file));
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

/**
 * The run id of the work dir under `snapshotsDir` that holds `file` (e.g. a backup job's socket),
 * or undefined when `file` is not inside a `snap-<runId>` dir directly under `snapshotsDir`.
 */
export function workDirRunIdOf(snapshotsDir: string, file: string): string | undefined {
  if (!isInside(snapshotsDir, file)) return undefined;
  const first = path.relative(path.normalize(snapshotsDir), path.normalize(file)).split(path.sep)[0] ?? '';
  // The file must be inside the dir, not the dir itself.
  if (path.join(snapshotsDir, first) === path.normalize(file)) return undefined;
  return WORK_DIR_NAME_RE.exec(first)?.[1];
}
