// What the run's work dir remembers about its point-in-time export, so that a retried or re-attached
// step (a new host worker after a kill, a Temporal reset) can tell the export it finds is the one it
// opened: the export's id, how it is served, the guest's quiesce facts at the cut, and the
// allocation map the image layout was computed from. The map must be the one of the first attempt,
// since a resumed stream's bytes are only the same bytes when the layout is the same.
import { randomUUID } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../fs/atomic-file';
import { EncodedMapSchema, RangeListSchema } from '../images/client';

const RECORD_FILE = 'export.json';

export const ExportKindSchema = z.enum(['backup-job', 'qemu-nbd']);
export type ExportKind = z.infer<typeof ExportKindSchema>;


const ExportRecordSchema = z.object({
  exportId: z.string().uuid(),
  kind: ExportKindSchema,
  socketPath: z.string().min(1),
  exportName: z.string().min(1),
  diskTarget: z.string().min(1),
  openedAt: z.number().int().nonnegative(),
  quiesced: z.boolean(),
  freezeWindowMs: z.number().nonnegative().nullable(),
  quiesceError: z.string().optional(),
  map: EncodedMapSchema.nullable(),
  /** full or incremental, as decided when the job began; absent in records of jobs before checkpoints */
  chain: z
    .object({
      kind: z.enum(['full', 'incremental']),
      fullReason: z.string().optional(),
      parentImageId: z.string().uuid().optional(),
      /** the checkpoint taken with this job */
      checkpoint: z.string().optional(),
      diskIdentity: z.string().optional(),
      /** an incremental: the ranges the dirty bitmap marks changed since the parent's checkpoint */
      changed: RangeListSchema.optional(),
    })
    .optional(),
});
export type ExportRecord = z.infer<typeof ExportRecordSchema>;

export function newExportId(): string {
  return randomUUID();
}


export async function writeExportRecord(workDir: string, record: ExportRecord): Promise<void> {
  await writeFileAtomic(join(workDir, RECORD_FILE), `${JSON.stringify(ExportRecordSchema.parse(record))}\n`);
}

/** The record, or undefined when there is none or it cannot be trusted (then the export is made again). */
export async function readExportRecord(workDir: string): Promise<ExportRecord | undefined> {
  let text: string;
  try {
    text = await readFile(join(workDir, RECORD_FILE), 'utf8');
  } catch {
    return undefined;
  }
  try {
    const parsed = ExportRecordSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

export async function removeExportRecord(workDir: string): Promise<void> {
  await rm(join(workDir, RECORD_FILE), { force: true });
}
