// The layout of a logical upload (the composing store's extension, see README.md): instead of an
// image file, the sender stages the guest data of the disk's point in time, and says how it is
// laid out. Shared by the host (which sends it) and the service (which composes the image from it):
// both derive the same list of sent pieces from it, so the staged offset means the same on both.
import { z } from 'zod';
import { planImage, type AllocationMap, type ExtentKind, type ImagePlan } from '../../qcow2';
import { ImageIdSchema } from './image-record';
import { CHUNK_NAME_BYTES, namedSlots } from './chunk-wire';

const KIND_CODES: Record<ExtentKind, 'd' | 'z' | 'h'> = { data: 'd', zero: 'z', hole: 'h' };
const CODE_KINDS = { d: 'data', z: 'zero', h: 'hole' } as const satisfies Record<string, ExtentKind>;

/** The image property holding the disk's logical digest (`sha256-256k-blocks:<hex>`, qcow2/logical-digest.ts). */
export const LOGICAL_DIGEST_PROPERTY = 'snapshot_logical_digest';

const Offset = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

type Code = 'd' | 'z' | 'h';
const CODES: ReadonlySet<unknown> = new Set<Code>(['d', 'z', 'h']);
const isOffset = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isLength = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) > 0;

/**
 * An array of same-shaped tuples, checked by one loop rather than a schema per element: a zod
 * tuple per extent costs ~10 µs, seconds of the event loop for a fragmented disk's layout.
 */
function tupleList<T>(check: (item: readonly unknown[]) => boolean, width: number, message: string): z.ZodType<T[]> {
  return z.custom<T[]>((v) => Array.isArray(v) && v.every((item) => Array.isArray(item) && item.length === width && check(item)), { message });
}

/** [offset, length, d|z|h] triples: compact for the millions of extents of a fragmented disk. */
export const EncodedMapSchema = z.object({
  virtualSize: Offset,
  extents: tupleList<[number, number, Code]>((e) => isOffset(e[0]) && isLength(e[1]) && CODES.has(e[2]), 3, 'extents are [offset, length, "d" | "z" | "h"] triples'),
});
export type EncodedMap = z.infer<typeof EncodedMapSchema>;

export function encodeMap(map: AllocationMap): EncodedMap {
  return { virtualSize: map.virtualSize, extents: map.extents.map((e) => [e.offset, e.length, KIND_CODES[e.kind]]) };
}

export function decodeMap(map: EncodedMap): AllocationMap {
  return { virtualSize: map.virtualSize, extents: map.extents.map(([offset, length, code]) => ({ offset, length, kind: CODE_KINDS[code] })) };
}

/** The plan of the image a layout (or the index composed from it) is served as: the host's writer's. */
export function servedPlan(of: { map: EncodedMap; format: 'qcow2' | 'raw' }): ImagePlan {
  return planImage(decodeMap(of.map), { format: of.format });
}

export const RangeListSchema = tupleList<[number, number]>((r) => isOffset(r[0]) && isLength(r[1]), 2, 'ranges are [offset, length] pairs');

export const LogicalLayoutSchema = z
  .object({
    /** how the image is served: the same one-pass writer as the host's */
    format: z.enum(['qcow2', 'raw']),
    /** the whole disk's allocation at the point in time */
    map: EncodedMapSchema,
    /** an incremental: the image whose content the disk had outside `changed` */
    parent: ImageIdSchema.optional(),
    /** with a parent: the ranges that may differ from it (a dirty bitmap's), ascending, disjoint */
    changed: RangeListSchema.optional(),
    /**
     * What the staged bytes are: the guest data of the sent pieces (protocol 1, the default), or one
     * chunk name per slot the data touches (protocol 2, full uploads only; chunk-wire.ts)
     */
    staged: z.enum(['guest-data', 'chunk-names']).optional(),
  })
  .strict()
  .superRefine((layout, ctx) => {
    if ((layout.parent === undefined) !== (layout.changed === undefined)) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'parent and changed go together' });
    }
    if (layout.staged === 'chunk-names' && layout.parent !== undefined) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['staged'], message: 'chunk names are staged by full uploads only (no parent)' });
    }
    if (!rangesInOrder(layout.map.extents.map(([o, l]) => [o, l]), layout.map.virtualSize, true)) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['map'], message: 'extents must cover the disk in order' });
    }
    if (layout.changed !== undefined && !rangesInOrder(layout.changed, layout.map.virtualSize, false)) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['changed'], message: 'changed ranges must be ascending, disjoint and inside the disk' });
    }
  });
export type LogicalLayout = z.infer<typeof LogicalLayoutSchema>;

function rangesInOrder(ranges: readonly (readonly [number, number])[], end: number, covering: boolean): boolean {
  let at = 0;
  for (const [offset, length] of ranges) {
    if (covering ? offset !== at : offset < at) return false;
    at = offset + length;
  }
  return at <= end && (!covering || at === end);
}

/** Extents plus changed ranges every composing service takes, whatever its image size cap. */
export const LAYOUT_ENTRIES_ANY_SERVICE_TAKES = 65_536;
const FIRST_GRAIN = 4096;

/**
 * The layout within `maxEntries` extents plus changed ranges. A guest can fragment its own disk
 * past any limit; such a disk is described coarser: its data extents (and changed ranges) rounded
 * out to a grain doubled until they fit, so the holes and zeros they swallow are sent as data (they
 * read as zeros: the same disk, more bytes). A pure function of the layout: a resumed stream
 * derives the same one.
 */
export function fitLayout(layout: LogicalLayout, maxEntries = LAYOUT_ENTRIES_ANY_SERVICE_TAKES): LogicalLayout {
  const { virtualSize, extents } = layout.map;
  const changed = layout.changed;
  if (extents.length + (changed?.length ?? 0) <= maxEntries) return layout;
  const budget = changed === undefined ? maxEntries : Math.floor(maxEntries / 2);
  const out: LogicalLayout = { ...layout };
  if (extents.length > budget) {
    // Data runs plus the gaps around them: at most twice the runs, and one.
    const data = coarsen(extents.filter(([, , kind]) => kind === 'd').map(([o, l]): [number, number] => [o, l]), virtualSize, Math.floor((budget - 1) / 2));
    out.map = { virtualSize, extents: withGaps(data, virtualSize) };
  }
  if (changed !== undefined && changed.length > budget) out.changed = coarsen(changed, virtualSize, budget);
  return out;
}

/** Ranges rounded out to the smallest grain (from 4 KiB, doubling) at which at most `max` remain. */
function coarsen(ranges: readonly (readonly [number, number])[], end: number, max: number): [number, number][] {
  for (let grain = FIRST_GRAIN; ; grain *= 2) {
    const out: [number, number][] = [];
    for (const [offset, length] of ranges) {
      const from = Math.floor(offset / grain) * grain;
      const to = Math.min(end, Math.ceil((offset + length) / grain) * grain);
      const last = out[out.length - 1];
      if (last !== undefined && last[0] + last[1] >= from) last[1] = Math.max(last[1], to - last[0]);
      else out.push([from, to - from]);
    }
    if (out.length <= Math.max(1, max) || grain >= end) return out;
  }
}

/** Data runs as extents covering the disk, the gaps between them holes. */
function withGaps(data: readonly [number, number][], end: number): [number, number, Code][] {
  const out: [number, number, Code][] = [];
  let at = 0;
  for (const [offset, length] of data) {
    if (offset > at) out.push([at, offset - at, 'h']);
    out.push([offset, length, 'd']);
    at = offset + length;
  }
  if (at < end) out.push([at, end - at, 'h']);
  return out;
}

export interface Piece {
  offset: number;
  length: number;
}

/**
 * The guest data the sender stages, in disk order: the data extents of the map, cut to the changed
 * ranges for an incremental. Zero and hole extents are never sent; the service knows them from the map.
 */
export function sentPieces(layout: LogicalLayout): Piece[] {
  const data = layout.map.extents.filter(([, , kind]) => kind === 'd').map(([offset, length]) => ({ offset, length }));
  if (layout.changed === undefined) return data;
  const out: Piece[] = [];
  let i = 0;
  for (const [offset, length] of layout.changed) {
    const end = offset + length;
    while (i < data.length && (data[i] as Piece).offset + (data[i] as Piece).length <= offset) i++;
    for (let j = i; j < data.length && (data[j] as Piece).offset < end; j++) {
      const d = data[j] as Piece;
      const from = Math.max(d.offset, offset);
      const to = Math.min(d.offset + d.length, end);
      if (to > from) out.push({ offset: from, length: to - from });
    }
  }
  return out;
}

export function piecesLength(pieces: readonly Piece[]): number {
  return pieces.reduce((sum, p) => sum + p.length, 0);
}

/** Whether the staged bytes are chunk names (protocol 2) rather than guest data. */
export const stagesChunkNames = (layout: LogicalLayout): boolean => layout.staged === 'chunk-names';

/** The length of what a layout stages: its sent pieces' bytes, or a name per named slot. */
export function stagedLength(layout: LogicalLayout): number {
  return stagesChunkNames(layout) ? namedSlots(layout).length * CHUNK_NAME_BYTES : piecesLength(sentPieces(layout));
}

/** GET here answers what the store can do; a real Glance answers 404. */
export const STORE_CAPABILITIES_URL = '/v2/snapshot-store';

export const StoreCapabilitiesSchema = z
  .object({
    compose: z.boolean(),
    chunk_bytes: z.number().int().positive(),
    /** the logical upload's protocols the service takes: 1 guest data, 2 chunk names (absent: 1 only, an older service) */
    logical_upload_versions: z.array(z.number().int().positive()).max(16).optional(),
  })
  .passthrough();
export type StoreCapabilities = z.infer<typeof StoreCapabilitiesSchema>;
