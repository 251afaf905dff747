// The sweep of a shared store decides a listed chunk's removal again just before it: one listed
// unnamed and old but touched or re-PUT since (a writer of another service is about to name it) is
// kept (by the re-check's HEAD even where the store would delete unconditionally), one still old
// is removed and counted, one gone meanwhile is not counted; a touch between the re-check's HEAD
// and the DELETE keeps it too, the delete being conditional on the time, and a compose that asked
// for the chunk meanwhile finds it stored. On a backend held in memory, with the
// other service's moves landed between the sweep's steps (test/support/sweep-points.ts).
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChunkStore, chunkHash } from '../../../src/images/store/chunk-store';
import { withSweepPoints, type SweepPoints } from '../../support/sweep-points';
import { memoryStoreBackend, type MemoryStoreBackend } from './memory-store-backend';

const CHUNK = 256 * 1024;
const GRACE_MS = 60_000;
const HOUR_MS = 3600_000;

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shared-store-sweep-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A chunk object written `ageMs` ago, named by its bytes. */
function stored(backend: MemoryStoreBackend, ageMs: number): { hex: string; bytes: Buffer } {
  const bytes = randomBytes(CHUNK);
  const hex = chunkHash(bytes).toString('hex');
  backend.chunks.objects.set(hex, { bytes, lastModified: new Date(Date.now() - ageMs) });
  return { hex, bytes };
}

/** A chunk store on `backend` with `points` laid over its chunks; its sweeps find no index naming anything. */
async function storeOn(backend: MemoryStoreBackend, points: SweepPoints): Promise<ChunkStore> {
  return ChunkStore.open(join(dir, 'chunks'), join(dir, 'quarantine'), { ...backend, chunks: withSweepPoints(backend.chunks, points) });
}
const noIndexNamesAny = async () => () => false;

describe('the sweep of a shared store', () => {
  it('removes a chunk still old at its delete, keeps one touched or re-PUT after the listing, and counts none gone meanwhile', async () => {
    const backend = memoryStoreBackend({ putsInFlight: 8, latencyMs: 2, graceMs: GRACE_MS });
    stored(backend, HOUR_MS); // still old at its delete
    const touched = stored(backend, HOUR_MS);
    const reput = stored(backend, HOUR_MS);
    const gone = stored(backend, HOUR_MS);
    const young = stored(backend, 0);
    const store = await storeOn(backend, {
      afterListing: async () => {
        await backend.chunks.touch(touched.hex);
        await backend.chunks.put(reput.hex, reput.bytes);
        backend.chunks.objects.delete(gone.hex);
      },
    });
    backend.chunks.heads.reset();

    const outcome = await store.collect(noIndexNamesAny);

    expect(outcome).toEqual({ removedChunks: 1, removedBytes: CHUNK, keptChunks: 3 });
    expect([...backend.chunks.objects.keys()].sort()).toEqual([touched.hex, reput.hex, young.hex].sort());
    // One HEAD per chunk the listing found old and unnamed; none of the young one.
    expect(backend.chunks.heads.started).toBe(4);
  });

  it('keeps a chunk touched after the listing by its re-check alone, on a store that would delete it unconditionally', async () => {
    const backend = memoryStoreBackend({ putsInFlight: 8, latencyMs: 2, graceMs: GRACE_MS });
    backend.chunks.ignoresRemoveCondition = true;
    const old = stored(backend, HOUR_MS);
    const touched = stored(backend, HOUR_MS);
    const store = await storeOn(backend, { afterListing: () => backend.chunks.touch(touched.hex) });

    expect(await store.collect(noIndexNamesAny)).toEqual({ removedChunks: 1, removedBytes: CHUNK, keptChunks: 1 });
    expect([...backend.chunks.objects.keys()]).toEqual([touched.hex]);
    expect(backend.chunks.objects.has(old.hex)).toBe(false);
  });

  it.each([
    ['touched between its HEAD and its DELETE is kept, and a compose that asked for it meanwhile finds it stored', true],
    ['left alone is removed, and a compose that asked for it meanwhile is told it is not stored (and writes it again)', false],
  ])('a chunk %s', async (_title, touch) => {
    const backend = memoryStoreBackend({ putsInFlight: 8, latencyMs: 2, graceMs: GRACE_MS });
    const chunk = stored(backend, HOUR_MS);
    let asked: Promise<boolean> | undefined;
    const store: ChunkStore = await storeOn(backend, {
      afterHead: async (hex) => {
        // The first HEAD only: the compose's own look-up goes through here too.
        if (asked !== undefined) return;
        if (touch) await backend.chunks.touch(hex);
        // The removal under way has claimed the chunk: this answer waits for it.
        asked = store.exists(Buffer.from(hex, 'hex'));
      },
    });

    const outcome = await store.collect(noIndexNamesAny);

    expect(outcome).toEqual(touch ? { removedChunks: 0, removedBytes: 0, keptChunks: 1 } : { removedChunks: 1, removedBytes: CHUNK, keptChunks: 0 });
    expect(backend.chunks.objects.has(chunk.hex)).toBe(touch);
    expect(await asked).toBe(touch);
  });
});
