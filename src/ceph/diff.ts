// What `rbd diff` answers, bounded and made into the changed ranges a snapshot sends. The answer
// is capped twice before it is held whole: the bytes the tool may write (killed past them), and the
// extents the schema takes. A disk that changed in more pieces than that is better read whole
// than described extent by extent (RbdDiffTooLarge: the caller takes a full snapshot).
import { z } from 'zod';
import { ToolOutputInvalid } from '../process/tool-process';
import { Bytes, RbdBool } from './rbd-json';

/** Extents one diff may report: a 2 TiB disk changed in every 4 MiB object, twice over. */
export const MAX_DIFF_EXTENTS = 1_048_576;
/** rbd writes an extent as `{"offset":N,"length":N,"exists":"true"}`: under 80 bytes with 16-digit numbers. */
export const MAX_DIFF_STDOUT_BYTES = MAX_DIFF_EXTENTS * 80;

/** The diff holds more extents than MAX_DIFF_EXTENTS: too fragmented to send as changes. */
export class RbdDiffTooLarge extends Error {
  override readonly name = 'RbdDiffTooLarge';
  readonly retryable = false;
}


// The count is checked before any extent is parsed.
export const DiffSchema = z
  .custom<unknown[]>((v) => Array.isArray(v) && v.length <= MAX_DIFF_EXTENTS, `an array of at most ${MAX_DIFF_EXTENTS} extents`)
  .pipe(z.array(z.object({ offset: Bytes, length: Bytes, exists: RbdBool })));

/**
 * The ranges a diff marks changed (written data and discarded ranges alike: both differ from the
 * older snapshot), ascending, disjoint, with touching ones merged, as the composing image service
 * takes them. An extent past the disk's end is not a diff of this disk: refused, never clipped.
 */
export function coalesceExtents(extents: readonly { offset: number; length: number }[], diskSize: number): [number, number][] {
  const sorted = extents.filter((e) => e.length > 0).sort((a, b) => a.offset - b.offset);
  const out: [number, number][] = [];
  for (const { offset, length } of sorted) {
    if (offset + length > diskSize) throw new ToolOutputInvalid('rbd diff', `extent [${offset}, +${length}) ends past the disk's ${diskSize} bytes`);
    const last = out[out.length - 1];
    if (last !== undefined && last[0] + last[1] >= offset) last[1] = Math.max(last[1], offset + length - last[0]);
    else out.push([offset, length]);
  }
  return out;
}
