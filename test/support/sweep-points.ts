// Points between the steps of a shared store's sweep, where a test lands what another service does
// meanwhile (a touch, a re-PUT, a removal). Laid over a backend's chunks, as
// src/fault-points/activity-barriers.ts lays barriers over activities: the store itself carries no
// test hooks. A point is a callback, not a pause on a clock, so what it does happens in its window.
import type { RemoteChunk, RemoteChunks } from '../../src/images/store/store-backend';

export interface SweepPoints {
  /** once a listing of the chunks is whole, before the sweep looks at any chunk it listed */
  afterListing?: () => Promise<void>;
  /** once a HEAD of the chunk has answered, before its caller goes on (a sweep: to the DELETE) */
  afterHead?: (hex: string) => Promise<void>;
}

/** `chunks` with `points` run in their windows; set a point's callback on the object at any time. */
export function withSweepPoints(chunks: RemoteChunks, points: SweepPoints): RemoteChunks {
  return {
    async stat(hex) {
      const found = await chunks.stat(hex);
      await points.afterHead?.(hex);
      return found;
    },
    get: (hex) => chunks.get(hex),
    put: (hex, bytes) => chunks.put(hex, bytes),
    touch: (hex) => chunks.touch(hex),
    removeIfOlder: (hex, cutoff) => chunks.removeIfOlder(hex, cutoff),
    quarantine: (hex) => chunks.quarantine(hex),
    async *list() {
      const listed: RemoteChunk[] = [];
      for await (const chunk of chunks.list()) listed.push(chunk);
      await points.afterListing?.();
      yield* listed;
    },
  };
}
