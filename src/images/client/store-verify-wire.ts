// The store's verify jobs as the image service's admin route shows them (`/v2/snapshot-store/verify`):
// what a job did and found, and when the next one runs. Shared by the service (which renders it)
// and the client (snapctl, which parses it).
import { z } from 'zod';

export const STORE_VERIFY_URL = '/v2/snapshot-store/verify';

export const VERIFY_JOB_STATES = ['running', 'ok', 'damaged', 'failed'] as const;

const Count = z.number().int().nonnegative();

export const VerifyJobSchema = z.object({
  id: z.string(),
  /** running; ok: every chunk checked was whole; damaged: some were not; failed: the job itself stopped (error) */
  state: z.enum(VERIFY_JOB_STATES),
  trigger: z.enum(['schedule', 'request']),
  started_at: z.string(),
  finished_at: z.string().nullable(),
  /** chunks verified since then (by an earlier job) were not read again */
  verified_since: z.string(),
  images_total: Count,
  images_done: Count,
  /** chunks read and hashed by this job */
  chunks_verified: Count,
  /** chunks skipped: verified by a job within the re-verify age */
  chunks_skipped: Count,
  bytes_read: Count,
  damaged_chunks: z.array(z.object({ chunk: z.string(), reason: z.enum(['mismatch', 'missing']) })),
  /** ids of the images that name a damaged chunk; each is marked `snapshot_damaged` */
  damaged_images: z.array(z.string()),
  error: z.string().nullable(),
});
export type VerifyJob = z.infer<typeof VerifyJobSchema>;

export const StoreVerifyStatusSchema = z.object({
  /** the job running, else the last one that ran (kept across restarts); null before the first */
  job: VerifyJobSchema.nullable(),
  /** null when no schedule is set (jobs run on request only) */
  interval_hours: z.number().nullable(),
  reverify_after_days: z.number(),
  next_run_at: z.string().nullable(),
});
export type StoreVerifyStatus = z.infer<typeof StoreVerifyStatusSchema>;
