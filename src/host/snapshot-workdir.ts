// The private temp dir each snapshot extracts into, under the configured snapshots directory
// (Nova's utils.tempdir(dir=CONF.libvirt.snapshots_directory)). Its name comes from the workflow
// run, so a retried or resumed attempt finds — and first wipes — what an earlier one left.
//
// A dir whose run holds its guest (a marker of guest-markers.ts: saved, or restarted paused) keeps
// that marker and its owner record through every wipe and removal of the run's files: the marker
// goes only once the guest is back (the run's restore, or the host's sweep), so a run ended at any
// point never leaves a guest of ours that nothing names.
import { chmod, mkdir, readdir, readFile, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { assertSafePath } from '../fs/safe-path';
import { errnoCode } from '../contract';
import { GUEST_MARKER_NAMES } from './export-paths';

const WorkDirKeySchema = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'a workflow run id (UUID)');
const PREFIX = 'snap-';
/**
 * Inside each work dir: which workflow run owns it. The dir name carries only the run id, and
 * Temporal cannot describe a run without its workflow id, so the host worker's start-up sweep
 * reads this to ask whether the owner is closed (see src/reconciler/workdir-sweeper.ts).
 */
const OWNER_FILE = '.owner.json';
const OwnerSchema = z.object({ workflowId: z.string().min(1).max(1000), runId: WorkDirKeySchema });
export type WorkDirOwner = z.infer<typeof OwnerSchema>;

export class SnapshotWorkDirs {
  /** Removals started by removeAfterAnswer and not finished yet, by key. */
  private readonly removals = new Map<string, Promise<void>>();

  constructor(readonly root: string) {
    assertSafePath(root);
  }

  pathFor(key: string): string {
    return join(this.root, `${PREFIX}${WorkDirKeySchema.parse(key)}`);
  }

  /**
   * A fresh dir, empty but for the run's guest marker (with its owner record) when it holds one:
   * 0700, or 0701 for live snapshots because QEMU must reach the delta inside.
   */
  async create(key: string, live: boolean): Promise<string> {
    const dir = this.pathFor(key);
    await this.removals.get(key);
    await mkdir(this.root, { recursive: true, mode: 0o711 });
    if (!(await this.removeRunFiles(dir))) await mkdir(dir, { mode: 0o700 });
    await chmod(dir, live ? 0o701 : 0o700);
    return dir;
  }

  /**
   * The dir as it is, made when missing: a one-pass step re-attaches to the export recorded inside,
   * so it must not wipe it. Modes as for create().
   */
  async ensure(key: string, live: boolean): Promise<string> {
    const dir = this.pathFor(key);
    await this.removals.get(key);
    await mkdir(this.root, { recursive: true, mode: 0o711 });
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, live ? 0o701 : 0o700);
    return dir;
  }

  /** Records the owning run; written right after create(), before anything slow happens. */
  async writeOwner(key: string, workflowId: string): Promise<void> {
    const owner = OwnerSchema.parse({ workflowId, runId: key });
    await writeFile(join(this.pathFor(key), OWNER_FILE), `${JSON.stringify(owner)}\n`, { mode: 0o600 });
  }

  /** The owner recorded by writeOwner, or undefined when absent or unreadable (a crash before it was written). */
  async readOwner(key: string): Promise<WorkDirOwner | undefined> {
    try {
      const parsed = OwnerSchema.safeParse(JSON.parse(await readFile(join(this.pathFor(key), OWNER_FILE), 'utf8')));
      return parsed.success && parsed.data.runId === key ? parsed.data : undefined;
    } catch {
      return undefined;
    }
  }

  /** Last modification of the work dir itself (ms since epoch), undefined when it is gone. */
  async modifiedAt(key: string): Promise<number | undefined> {
    try {
      return (await stat(this.pathFor(key))).mtimeMs;
    } catch {
      return undefined;
    }
  }

  /**
   * Removes the dir; of a dir whose run still holds its guest, all but the guest marker and the
   * owner record (the restore or the sweep removes the rest, removeEmpty). True when it is gone.
   */
  async remove(key: string): Promise<boolean> {
    const dir = this.pathFor(key);
    await this.removals.get(key);
    return !(await this.removeRunFiles(dir));
  }

  /** Removes the dir when nothing but its owner record is left in it (its guest came back after its files went). */
  async removeEmpty(key: string): Promise<void> {
    const dir = this.pathFor(key);
    await this.removals.get(key);
    const names = await this.entries(dir);
    if (names === undefined || names.some((n) => n !== OWNER_FILE)) return;
    await rm(join(dir, OWNER_FILE), { force: true });
    await rmdir(dir).catch((err: unknown) => {
      // Written into meanwhile, or removed meanwhile: either way not ours to remove now.
      if (errnoCode(err) !== 'ENOTEMPTY' && errnoCode(err) !== 'ENOENT') throw err;
    });
  }

  /** Removes the run's files; the dir stays (true) only for its guest marker and owner record. */
  private async removeRunFiles(dir: string): Promise<boolean> {
    const names = await this.entries(dir);
    if (names === undefined) return false;
    if (!names.some((n) => GUEST_MARKER_NAMES.includes(n))) {
      await rm(dir, { recursive: true, force: true });
      return false;
    }
    const kept = new Set([...GUEST_MARKER_NAMES, OWNER_FILE]);
    for (const name of names) if (!kept.has(name)) await rm(join(dir, name), { recursive: true, force: true });
    return true;
  }

  /** The names inside a work dir, undefined when it does not exist. */
  private async entries(dir: string): Promise<string[] | undefined> {
    try {
      return await readdir(dir);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  /**
   * Removes the dir as remove() does, without the caller waiting for it: a step that has released
   * what the dir's files served answers first, since unlinking on a busy shared disk can take a
   * second. Create, ensure, remove, removeEmpty and list wait for it. A failure goes to `onFailure`; the dir then stays, as it
   * does when the worker dies first, for the work-dir sweep to remove once the run has closed
   * (src/reconciler/workdir-sweeper.ts).
   */
  removeAfterAnswer(key: string, onFailure: (err: unknown) => void): void {
    const dir = this.pathFor(key);
    const previous = this.removals.get(key) ?? Promise.resolve();
    const removal: Promise<void> = previous
      .then(async () => void (await this.removeRunFiles(dir)))
      .catch(onFailure)
      .finally(() => {
        if (this.removals.get(key) === removal) this.removals.delete(key);
      });
    this.removals.set(key, removal);
  }

  /** Resolves once the removals under way have ended (a worker's shutdown waits for them). */
  async settled(): Promise<void> {
    await Promise.all(this.removals.values());
  }

  /** Work dirs present once the removals under way have ended (for the sweep and for tests asserting nothing is left). */
  async list(): Promise<string[]> {
    await this.settled();
    try {
      return (await readdir(this.root)).filter((n) => n.startsWith(PREFIX)).map((n) => n.slice(PREFIX.length));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return [];
      throw err;
    }
  }
}
