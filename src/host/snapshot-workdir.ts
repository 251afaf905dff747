// The private temp dir each snapshot extracts into, under the configured snapshots directory
// (Nova's utils.tempdir(dir=CONF.libvirt.snapshots_directory)). Its name comes from the workflow
// run, so a retried or resumed attempt finds — and first wipes — what an earlier one left.
import { chmod, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { assertSafePath } from '../fs/safe-path';
import { errnoCode } from '../contract';

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

  /** A fresh, empty dir: 0700, or 0701 for live snapshots because QEMU must reach the delta inside. */
  async create(key: string, live: boolean): Promise<string> {
    const dir = this.pathFor(key);
    await this.removals.get(key);
    await mkdir(this.root, { recursive: true, mode: 0o711 });
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { mode: 0o700 });
    if (live) await chmod(dir, 0o701);
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

  async remove(key: string): Promise<void> {
    const dir = this.pathFor(key);
    await this.removals.get(key);
    await rm(dir, { recursive: true, force: true });
  }

  /**
   * Removes the dir without the caller waiting for it: a step that has released what the dir's
   * files served answers first, since unlinking on a busy shared disk can take a second. Create,
   * ensure, remove and list wait for it. A failure goes to `onFailure`; the dir then stays, as it
   * does when the worker dies first, for the work-dir sweep to remove once the run has closed
   * (src/reconciler/workdir-sweeper.ts).
   */
  removeAfterAnswer(key: string, onFailure: (err: unknown) => void): void {
    const dir = this.pathFor(key);
    const previous = this.removals.get(key) ?? Promise.resolve();
    const removal: Promise<void> = previous
      .then(() => rm(dir, { recursive: true, force: true }))
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
