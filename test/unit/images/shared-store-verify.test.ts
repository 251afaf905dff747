// A verify job on a shared backend, counted on one held in memory: a chunk several images name is
// read once per job; a later job skips what a job found whole within the re-verify age, also after
// the service restarts; with a re-verify age of 0 every job reads each chunk once; a damaged chunk
// is never recorded as whole; a stamp file SQLite cannot read is set aside and every chunk read.
// The real backend on a RADOS Gateway is tested in test/integration/images/s3-store.test.ts.
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageService } from '../../../src/images/service';
import { DEFAULT_REVERIFY_AFTER_MS } from '../../../src/images/service/verify-jobs';
import type { VerifyJob } from '../../../src/images/client';
import { composedRawImage, diskWith } from './composed-fixture';
import { memoryStoreBackend, type MemoryStoreBackend } from './memory-store-backend';

const MiB = 1024 * 1024;
/** 2 MiB of data: 8 chunks of 256 KiB */
const CHUNKS = 8;

let dir: string;
let service: ImageService | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shared-store-verify-'));
});
afterEach(async () => {
  await service?.close();
  service = undefined;
  await rm(dir, { recursive: true, force: true });
});

async function serviceOn(backend: MemoryStoreBackend, reverifyAfterMs = DEFAULT_REVERIFY_AFTER_MS): Promise<ImageService> {
  await service?.close();
  service = await ImageService.open({ dataDir: dir, maxImageBytes: 64 * MiB, verifyAfterCommit: false, sharedStore: backend, verifyJobs: { reverifyAfterMs } });
  return service;
}

/** Two images of the same 2 MiB, so every chunk is named twice. */
async function twoImagesSharingChunks(s: ImageService): Promise<string[]> {
  const { disk, map } = diskWith([[0, 2 * MiB]], 2 * MiB);
  return [await composedRawImage(s, disk, map, 'first'), await composedRawImage(s, disk, map, 'second')];
}

async function job(s: ImageService, backend: MemoryStoreBackend): Promise<{ result: VerifyJob; gets: number }> {
  // Glance's checksums, computed after activation, read the chunks too.
  await s.checksums.idle();
  backend.chunks.gets.reset();
  const result = await s.verifyJobs.start('request').finished;
  return { result, gets: backend.chunks.gets.started };
}

describe('a verify job on a shared backend', () => {
  it('reads a chunk two images name once, and a later job reads none it found whole, also after a restart', async () => {
    const backend = memoryStoreBackend({ putsInFlight: 8, latencyMs: 1 });
    await twoImagesSharingChunks(await serviceOn(backend));

    const first = await job(service as ImageService, backend);
    expect(first.result.state).toBe('ok');
    expect(first.gets).toBe(CHUNKS);
    expect(first.result).toMatchObject({ images_total: 2, chunks_verified: CHUNKS, chunks_skipped: CHUNKS, bytes_read: 2 * MiB });

    const second = await job(service as ImageService, backend);
    expect(second.gets).toBe(0);
    expect(second.result).toMatchObject({ state: 'ok', chunks_verified: 0, chunks_skipped: 2 * CHUNKS });

    const afterRestart = await job(await serviceOn(backend), backend);
    expect(afterRestart.gets).toBe(0);
    expect(afterRestart.result.chunks_skipped).toBe(2 * CHUNKS);
  });

  it('with a re-verify age of 0 reads every chunk once per job', async () => {
    const backend = memoryStoreBackend({ putsInFlight: 8, latencyMs: 1 });
    await twoImagesSharingChunks(await serviceOn(backend, 0));

    for (let n = 0; n < 2; n++) {
      const run = await job(service as ImageService, backend);
      expect(run.gets).toBe(CHUNKS);
      expect(run.result.chunks_verified).toBe(CHUNKS);
    }
  });

  it('never records a damaged chunk as whole: the next job reads it again', async () => {
    const backend = memoryStoreBackend({ putsInFlight: 8, latencyMs: 1 });
    const ids = await twoImagesSharingChunks(await serviceOn(backend));
    const rotten = [...backend.chunks.objects.keys()][3] as string;
    backend.chunks.answer = (hex, stored) => (hex === rotten ? Buffer.concat([stored.subarray(0, 1).map((b) => b ^ 1), stored.subarray(1)]) : stored);
    // Kept in the bucket, so the next job finds it again rather than missing.
    backend.chunks.quarantine = async () => undefined;

    const first = await job(service as ImageService, backend);
    expect(first.result.state).toBe('damaged');
    expect(first.result.damaged_chunks).toEqual([{ chunk: rotten, reason: 'mismatch' }]);
    expect(first.result.damaged_images.sort()).toEqual([...ids].sort());

    const seen: string[] = [];
    const answer = backend.chunks.answer;
    backend.chunks.answer = (hex, stored) => {
      seen.push(hex);
      return answer(hex, stored);
    };
    const second = await job(service as ImageService, backend);
    expect(seen).toEqual([rotten]);
    expect(second.result.damaged_chunks).toEqual([{ chunk: rotten, reason: 'mismatch' }]);
  });

  it('sets aside a stamp file it cannot read, and reads every chunk', async () => {
    const backend = memoryStoreBackend({ putsInFlight: 8, latencyMs: 1 });
    await twoImagesSharingChunks(await serviceOn(backend));
    await job(service as ImageService, backend);
    await writeFile(join(dir, 'verify', 'chunk-stamps.sqlite'), Buffer.alloc(8192, 0x5a));
    await rm(join(dir, 'verify', 'chunk-stamps.sqlite-wal'), { force: true });
    await rm(join(dir, 'verify', 'chunk-stamps.sqlite-shm'), { force: true });

    const run = await job(service as ImageService, backend);
    expect(run.result.state).toBe('ok');
    expect(run.gets).toBe(CHUNKS);
    expect((await readdir(join(dir, 'verify'))).filter((f) => f.startsWith('chunk-stamps.sqlite.damaged-'))).toHaveLength(1);
  });
});
