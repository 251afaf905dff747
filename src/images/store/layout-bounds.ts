// What a logical upload may ask of the service, checked before anything is allocated or written:
// every table a commit builds, every index and every download is sized by the layout's virtual
// size and extent count, not by the bytes the tenant sends (a 16 TiB disk of holes sends none).
// The bounds derive from one setting, the image size cap (Glance's image_size_cap).
import { MiB, Qcow2LayoutError, SECTOR_SIZE } from '../../qcow2';
import { ImageTooLarge, badRequest } from '../client/image-errors';
import { LAYOUT_ENTRIES_ANY_SERVICE_TAKES, servedPlan, type LogicalLayout } from '../client/logical-layout';

/** One extent per 4 MiB of the cap on average: 262,144 for Glance's default 1 TiB. */
const CAP_BYTES_PER_ENTRY = 4 * MiB;
/** The longest JSON an entry can take: `[9007199254740991,9007199254740991,"d"],`. */
const MAX_ENTRY_JSON_BYTES = 42;
/** Room for the rest of the open body (size, token, format, parent). */
const OPEN_BODY_SLACK = 64 * 1024;

/** Extents plus changed ranges one layout may carry under the image size cap. */
export function maxLayoutEntries(maxImageBytes: number): number {
  return Math.max(LAYOUT_ENTRIES_ANY_SERVICE_TAKES, Math.floor(maxImageBytes / CAP_BYTES_PER_ENTRY));
}

/** Body limit of the route that takes a layout: the largest layout the cap allows, and no more. */
export function layoutBodyLimit(maxImageBytes: number): number {
  return OPEN_BODY_SLACK + maxLayoutEntries(maxImageBytes) * MAX_ENTRY_JSON_BYTES;
}

/**
 * Refuses (400, 413) a layout the service will not hold: a virtual size that is not whole sectors,
 * a disk or a served image above the cap, more entries than the cap allows. The served size is
 * planned from runs (bytes per extent, not per cluster), so the check itself is bounded by the
 * entries already counted.
 */
export function checkLayoutBounds(layout: LogicalLayout, maxImageBytes: number): { servedSize: number } {
  const { virtualSize, extents } = layout.map;
  if (virtualSize % SECTOR_SIZE !== 0) throw badRequest(`Invalid resumable upload: the disk's virtual size ${virtualSize} is not a multiple of ${SECTOR_SIZE}`);
  if (virtualSize > maxImageBytes) throw new ImageTooLarge(`The disk's virtual size of ${virtualSize} bytes exceeds the image size cap of ${maxImageBytes} bytes`);
  const entries = extents.length + (layout.changed?.length ?? 0);
  const maxEntries = maxLayoutEntries(maxImageBytes);
  if (entries > maxEntries) throw new ImageTooLarge(`The layout holds ${entries} extents and changed ranges; at most ${maxEntries} are taken under the image size cap`);
  let servedSize: number;
  try {
    servedSize = servedPlan(layout).size;
  } catch (err) {
    if (err instanceof Qcow2LayoutError) throw badRequest(`Invalid resumable upload: ${err.message}`);
    throw err;
  }
  if (servedSize > maxImageBytes) throw new ImageTooLarge(`The ${layout.format} image of this disk would be ${servedSize} bytes, above the image size cap of ${maxImageBytes} bytes`);
  return { servedSize };
}
