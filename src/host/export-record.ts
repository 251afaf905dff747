// What the run's work dir remembers about its point-in-time export, so that a retried or re-attached
// step (a new host worker after a kill, a Temporal reset) can tell the export it finds is the one it
// opened: the export's id, how it is served, the guest's quiesce facts at the cut, and the
// allocation map the image layout was computed from. The map must be the one of the first attempt,
// since a resumed stream's bytes are only the same bytes when the layout is the same.
import { randomUUID } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../images/atomic-file';
import type { AllocationMap, ExtentKind } from '../qcow2';

const RECORD_FILE = 'export.json';

export const ExportKindSchema = z.enum(['backup-job', 'qemu-nbd']);
export type ExportKind = z.infer<typeof ExportKindSchema>;

const KIND_CODES: Record<ExtentKind, 'd' | 'z' | 'h'> = { data: 'd', zero: 'z', hole: 'h' };
const CODE_KINDS = { d: 'data', z: 'zero', h: 'hole' } as const satisfies Record<string, ExtentKind>;

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
  /** [offset, length, d|z|h] triples: compact for the millions of extents of a fragmented disk */
  map: z
    .object({
      virtualSize: z.number().int().nonnegative(),
      extents: z.array(z.tuple([z.number().int().nonnegative(), z.number().int().positive(), z.enum(['d', 'z', 'h'])])),
    })
    .nullable(),
});
export type ExportRecord = z.infer<typeof ExportRecordSchema>;

export function newExportId(): string {
  return randomUUID();
}

export function encodeMap(map: AllocationMap): NonNullable<ExportRecord['map']> {
  return { virtualSize: map.virtualSize, extents: map.extents.map((e) => [e.offset, e.length, KIND_CODES[e.kind]]) };
}

export function decodeMap(map: NonNullable<ExportRecord['map']>): AllocationMap {
  return { virtualSize: map.virtualSize, extents: map.extents.map(([offset, length, code]) => ({ offset, length, kind: CODE_KINDS[code] })) };
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
