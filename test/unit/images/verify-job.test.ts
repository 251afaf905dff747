// The store's verify jobs, as PBS runs them: every chunk the active images name is read and checked
// against its name; a byte flipped in a real chunk file marks every image that holds the chunk
// (snapshot_damaged) and the job's result names it; chunks a job found whole within the re-verify
// age are not read again; the job's progress and result are on the admin route and in snapctl.
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuthIdentity } from '../../../src/auth';
import { storeVerifyCommand } from '../../../src/cli/image-commands';
import { GlanceHttpClient, ImageConflict, ImageRequestRejected } from '../../../src/images/client';
import { startImageServer, UNAUTHENTICATED_ADMIN as admin, type RunningImageServer } from '../../../src/images/service';
import { composedRawImage, diskWith, flipByte } from './composed-fixture';

const MiB = 1024 * 1024;
const CHUNK = 256 * 1024;

let dir: string;
let server: RunningImageServer | undefined;

const identities: Record<string, AuthIdentity> = {
  admin: { kind: 'cloud-admin', projectId: null },
  member: { kind: 'project', projectId: 'p1', projectAdmin: true },
};

async function start(reverifyAfterMs: number): Promise<RunningImageServer> {
  await server?.close();
  server = await startImageServer({ port: 0, dataDir: dir, maxImageBytes: 64 * MiB, verifyJobs: { reverifyAfterMs } });
  return server;
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'verify-job-'));
  server = undefined;
});
afterEach(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

const chunkPath = (hex: string): string => join(dir, 'chunks', hex.slice(0, 2), hex);

/** Two images of 2 MiB each: the first MiB the same in both (4 chunks shared), the second their own. */
async function twoImages(s: RunningImageServer): Promise<{ a: string; b: string; shared: Buffer; ownOfB: Buffer }> {
  const { disk: diskA, map } = diskWith([[0, 2 * MiB]], 2 * MiB);
  const { disk: diskB } = diskWith([[0, 2 * MiB]], 2 * MiB);
  diskA.copy(diskB, 0, 0, MiB);
  const images = { a: await composedRawImage(s.service, diskA, map, 'a'), b: await composedRawImage(s.service, diskB, map, 'b'), shared: diskA.subarray(0, CHUNK), ownOfB: diskB.subarray(MiB, MiB + CHUNK) };
  // The checksum pass after activation reads every chunk: a byte a test flips while it runs would be found by it, not by a job.
  await s.service.checksums.idle();
  return images;
}

describe('a store verify job', () => {
  it('verifies a clean store clean, reads each chunk once however many images hold it, and skips chunks verified within the age', async () => {
    const s = await start(3600_000);
    await twoImages(s);
    const first = await s.service.verifyJobs.start('request').finished;
    expect(first).toMatchObject({ state: 'ok', trigger: 'request', images_total: 2, images_done: 2, chunks_verified: 12, chunks_skipped: 4, bytes_read: 12 * CHUNK, damaged_chunks: [], damaged_images: [], error: null });
    // Within the age: nothing is read again.
    const second = await s.service.verifyJobs.start('request').finished;
    expect(second).toMatchObject({ state: 'ok', chunks_verified: 0, chunks_skipped: 16 });
    // An age of 0: every job reads every chunk.
    const again = await (await start(0)).service.verifyJobs.start('request').finished;
    expect(again).toMatchObject({ state: 'ok', chunks_verified: 12, chunks_skipped: 4 });
  });

  it('finds a flipped byte in a real chunk file: every image holding it is marked, the result names them and the chunk', async () => {
    const s = await start(3600_000);
    const { a, b, shared, ownOfB } = await twoImages(s);
    await s.service.verifyJobs.start('request').finished;
    // Rot after a clean job: found by the next job once the chunk's verification is older than the age.
    await flipByte(chunkPath(sha256(shared)), 7);
    const withinAge = await s.service.verifyJobs.start('request').finished;
    expect(withinAge.state).toBe('ok');

    const later = await start(0);
    const job = await later.service.verifyJobs.start('request').finished;
    expect(job.state).toBe('damaged');
    expect(job.damaged_chunks).toEqual([{ chunk: sha256(shared), reason: 'mismatch' }]);
    expect([...job.damaged_images].sort()).toEqual([a, b].sort());
    for (const id of [a, b]) expect(later.service.get(admin, id).snapshot_damaged).toContain(`verify job: chunk ${sha256(shared)} does not hash to its name`);
    expect((await readdir(join(dir, 'quarantine', 'chunks'))).map((f) => f.split('.')[0])).toEqual([sha256(shared)]);

    // A chunk only b holds, never verified yet: the next job finds it; a is left alone.
    await flipByte(chunkPath(sha256(ownOfB)), 0);
    const next = await later.service.verifyJobs.start('request').finished;
    expect(next.damaged_chunks).toEqual(expect.arrayContaining([{ chunk: sha256(ownOfB), reason: 'mismatch' }]));
    // The result is kept across a restart.
    expect((await start(0)).service.verifyJobs.status().job).toEqual(next);
  });

  it('shows progress and results on the admin route (cloud admins only) and in snapctl', async () => {
    await rm(dir, { recursive: true, force: true });
    dir = await mkdtemp(join(tmpdir(), 'verify-job-'));
    server = await startImageServer({ port: 0, dataDir: dir, maxImageBytes: 64 * MiB, verifyJobs: { reverifyAfterMs: 0 }, authenticate: async (token) => identities[token] ?? null });
    const s = server;
    const { a, shared } = await twoImages(s);
    const adminClient = new GlanceHttpClient(s.url, 'admin');
    await expect(new GlanceHttpClient(s.url, 'member').storeVerifyStatus()).rejects.toBeInstanceOf(ImageRequestRejected);
    await expect(new GlanceHttpClient(s.url, 'member').startStoreVerify()).rejects.toMatchObject({ status: 403 });
    expect(await adminClient.storeVerifyStatus()).toEqual({ job: null, interval_hours: null, reverify_after_days: 0, next_run_at: null });

    await flipByte(chunkPath(sha256(shared)), 100);
    const started = await adminClient.startStoreVerify();
    expect(started.state).toBe('running');
    await expect(adminClient.startStoreVerify()).rejects.toBeInstanceOf(ImageConflict);
    let written = '';
    const whole = await storeVerifyCommand(adminClient, { json: false, write: (t) => (written += t) }, { start: false, wait: true, pollMs: 20 });
    expect(whole).toBe(false);
    expect(written).toMatch(/state\s+damaged/);
    expect(written).toContain(sha256(shared));
    expect(written).toContain(a);
    expect((await adminClient.get(a)).snapshot_damaged).toContain('verify job');
  });
});
