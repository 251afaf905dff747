// The store's verify jobs: one at a time, started by the schedule (an interval in the service's
// settings) or by an admin's request, each a pass over every chunk the active images name
// (store/verify-job.ts). The images that name a damaged chunk are marked `snapshot_damaged`. The
// job running, or else the last one, is what the admin route shows; the last is kept on disk
// (<dataDir>/verify/last-job.json) so a restart does not forget what a job found.
//
// Scheduled here rather than by a Temporal Schedule: the job reads the store's own files, which
// only this process reaches, and the image service needs no Temporal connection for it.
import { randomUUID } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../fs/atomic-file';
import { errnoCode, errorMessage } from '../../contract';
import { ImageConflict } from '../client/image-errors';
import { VerifyJobSchema, type StoreVerifyStatus, type VerifyJob } from '../client/store-verify-wire';
import type { ComposedImages } from '../store/composed-images';
import { newVerifyProgress, type VerifyProgress } from '../store/verify-job';
import { VerifiedChunks } from '../store/verified-chunks';
import type { MarkDamaged } from './damage-marks';
import type { RepositoryWarning } from './image-record-repository';

const DAY_MS = 24 * 3600_000;
const HOUR_MS = 3600_000;

export interface VerifyJobSettings {
  /** how often a job starts by itself; undefined: on request only */
  intervalMs?: number;
  /** a chunk a job found whole more recently than this is not read again (PBS's "re-verify after") */
  reverifyAfterMs: number;
}

/** Proxmox Backup Server's default: re-verify after 30 days. */
export const DEFAULT_REVERIFY_AFTER_MS = 30 * DAY_MS;

export interface VerifyJobsDeps {
  composed: ComposedImages;
  dir: string;
  /** a shared backend's chunks: when jobs found them whole is kept in this file (store/verified-chunks.ts) */
  stampsFile?: string;
  /** whether an image's chunks are checked: it is active */
  isActive: (id: string) => boolean;
  markDamaged: MarkDamaged;
  warn: RepositoryWarning;
  now: () => Date;
}

interface Running {
  job: VerifyJob;
  progress: VerifyProgress;
  done: Promise<VerifyJob>;
}

export class StoreVerifyJobs {
  private running: Running | undefined;
  private last: VerifyJob | null = null;
  private timer: NodeJS.Timeout | undefined;
  private nextRunAt: Date | null = null;
  private stopping = false;

  private constructor(
    private readonly deps: VerifyJobsDeps,
    private readonly settings: VerifyJobSettings,
  ) {}

  static async open(deps: VerifyJobsDeps, settings: VerifyJobSettings): Promise<StoreVerifyJobs> {
    await mkdir(deps.dir, { recursive: true });
    const jobs = new StoreVerifyJobs(deps, settings);
    jobs.last = await jobs.readLast();
    if (settings.intervalMs !== undefined) jobs.schedule(settings.intervalMs);
    return jobs;
  }

  status(): StoreVerifyStatus {
    return {
      job: this.running === undefined ? this.last : this.view(this.running),
      interval_hours: this.settings.intervalMs === undefined ? null : this.settings.intervalMs / HOUR_MS,
      reverify_after_days: this.settings.reverifyAfterMs / DAY_MS,
      next_run_at: this.nextRunAt?.toISOString() ?? null,
    };
  }

  /** Starts a job; ImageConflict while one runs. Resolves with the job as it started; `finished` with its end. */
  start(trigger: VerifyJob['trigger']): { job: VerifyJob; finished: Promise<VerifyJob> } {
    if (this.running !== undefined) throw new ImageConflict(`Verify job ${this.running.job.id} is running; wait for it to finish`);
    const now = this.deps.now();
    const job: VerifyJob = {
      ...emptyCounts(),
      id: randomUUID(),
      state: 'running',
      trigger,
      started_at: now.toISOString(),
      finished_at: null,
      verified_since: new Date(now.getTime() - this.settings.reverifyAfterMs).toISOString(),
      error: null,
    };
    const progress = newVerifyProgress();
    const running: Running = { job, progress, done: Promise.resolve(job) };
    this.running = running;
    running.done = this.run(running);
    return { job: this.view(running), finished: running.done };
  }

  async close(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    await this.running?.done;
  }

  private async run(running: Running): Promise<VerifyJob> {
    const { composed, isActive, markDamaged, warn } = this.deps;
    let error: string | null = null;
    const verifiedSince = Date.parse(running.job.verified_since);
    let stamps: VerifiedChunks | undefined;
    try {
      if (this.deps.stampsFile !== undefined) stamps = VerifiedChunks.open(this.deps.stampsFile, warn);
      await composed.verify({
        keep: isActive,
        verifiedSince,
        stamps,
        progress: running.progress,
        onDamaged: (id, damage) => markDamaged(id, 'verify job', damage.message),
        stopped: () => this.stopping,
      });
      stamps?.prune(verifiedSince);
    } catch (err) {
      error = errorMessage(err);
      warn({ jobId: running.job.id, err: error }, 'store verify job failed');
    } finally {
      stamps?.close();
    }
    const finished = this.view(running);
    finished.finished_at = this.deps.now().toISOString();
    finished.error = error;
    finished.state = error !== null ? 'failed' : finished.damaged_chunks.length > 0 ? 'damaged' : 'ok';
    this.last = finished;
    this.running = undefined;
    await writeFileAtomic(this.lastPath(), JSON.stringify(finished)).catch((err: unknown) => warn({ err: errorMessage(err) }, 'the verify job result could not be kept on disk'));
    if (finished.state !== 'ok') warn({ jobId: finished.id, state: finished.state, damagedImages: finished.damaged_images }, 'store verify job found damage');
    return finished;
  }

  private view(running: Running): VerifyJob {
    const p = running.progress;
    return {
      ...running.job,
      images_total: p.imagesTotal,
      images_done: p.imagesDone,
      chunks_verified: p.chunksVerified,
      chunks_skipped: p.chunksSkipped,
      bytes_read: p.bytesRead,
      damaged_chunks: [...p.damagedChunks.values()].map((d) => ({ chunk: d.chunk, reason: d.reason })),
      damaged_images: [...p.damagedImages],
    };
  }

  /** Each run is due one interval after the last one started; a job still running skips its turn. */
  private schedule(intervalMs: number): void {
    this.nextRunAt = new Date(this.deps.now().getTime() + intervalMs);
    this.timer = setTimeout(() => {
      if (this.stopping) return;
      if (this.running === undefined) this.start('schedule');
      this.schedule(intervalMs);
    }, intervalMs);
    this.timer.unref();
  }

  private lastPath(): string {
    return join(this.deps.dir, 'last-job.json');
  }

  private async readLast(): Promise<VerifyJob | null> {
    try {
      return VerifyJobSchema.parse(JSON.parse(await readFile(this.lastPath(), 'utf8')));
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') this.deps.warn({ err: errorMessage(err) }, 'the last verify job result cannot be read: forgotten');
      return null;
    }
  }
}

function emptyCounts(): Pick<VerifyJob, 'images_total' | 'images_done' | 'chunks_verified' | 'chunks_skipped' | 'bytes_read' | 'damaged_chunks' | 'damaged_images'> {
  return { images_total: 0, images_done: 0, chunks_verified: 0, chunks_skipped: 0, bytes_read: 0, damaged_chunks: [], damaged_images: [] };
}
