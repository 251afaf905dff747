// Reference counts of the chunks: how many slots of the counted images' indexes name each chunk,
// so a delete reclaims the chunks only its image held by reading that image's index alone, not
// every index in the store (PBS's mark-and-sweep reads them all, and its space comes back a day
// late). The counts live in memory only and are never written: a crash cannot leave a wrong count
// behind, because the next start rebuilds them from the indexes on disk (the repair pass,
// ComposedImages.collect) before anything is served. Within a process they are exact, so a chunk a
// live index names always has a count above zero and is never removed.
//
// Counted per slot, not per distinct chunk: an image adds and removes the same slots, a window at a
// time, and no window needs to know what the others held.
import { slotHash } from './image-index';
import { CHUNK_HASH_BYTES } from './chunk-store';

export class ChunkRefs {
  /** slots naming each chunk, by hex name; a chunk at zero is not in the map */
  private readonly counts = new Map<string, number>();
  /** images whose slots are counted: counting and uncounting are idempotent */
  private readonly images = new Set<string>();

  isCounted(id: string): boolean {
    return this.images.has(id);
  }

  /** Whether any counted image names the chunk. */
  has(hex: string): boolean {
    return this.counts.has(hex);
  }

  get chunks(): number {
    return this.counts.size;
  }

  /** Counts one window of an image's chunk table (the image is marked counted by counted()). */
  add(window: Buffer): void {
    for (let i = 0; i * CHUNK_HASH_BYTES < window.length; i++) {
      const hash = slotHash(window, i);
      if (hash === null) continue;
      const hex = hash.toString('hex');
      this.counts.set(hex, (this.counts.get(hex) ?? 0) + 1);
    }
  }

  /** Takes one window of an image's chunk table off the counts; the chunks that fall to zero join `freed`. */
  remove(window: Buffer, freed: Set<string>): void {
    for (let i = 0; i * CHUNK_HASH_BYTES < window.length; i++) {
      const hash = slotHash(window, i);
      if (hash === null) continue;
      const hex = hash.toString('hex');
      const n = (this.counts.get(hex) ?? 0) - 1;
      if (n > 0) {
        this.counts.set(hex, n);
      } else {
        this.counts.delete(hex);
        freed.add(hex);
      }
    }
  }

  counted(id: string): void {
    this.images.add(id);
  }

  uncounted(id: string): void {
    this.images.delete(id);
  }
}
