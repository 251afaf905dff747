// Bit rot is never served: a byte flipped in a real chunk file fails the download the client makes
// (never a whole, successful response), marks the image damaged, and moves the chunk aside, so the
// next upload carrying those bytes writes it again and the image downloads whole once more.
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GlanceHttpClient } from '../../../src/images/client';
import { startImageServer, UNAUTHENTICATED_ADMIN as admin, type RunningImageServer } from '../../../src/images/service';
import { composedRawImage, diskWith, flipByte } from './composed-fixture';

const MiB = 1024 * 1024;

let dir: string;
let server: RunningImageServer | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bit-rot-'));
  server = await startImageServer({ port: 0, dataDir: dir, maxImageBytes: 64 * MiB });
});
afterEach(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Every chunk file's path, by its name. */
async function chunkFiles(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const sub of await readdir(join(dir, 'chunks'))) for (const name of await readdir(join(dir, 'chunks', sub))) out.set(name, join(dir, 'chunks', sub, name));
  return out;
}

async function downloaded(images: GlanceHttpClient, id: string): Promise<{ bytes: Buffer; error?: unknown }> {
  const parts: Buffer[] = [];
  try {
    for await (const b of await images.download(id)) parts.push(b as Buffer);
    return { bytes: Buffer.concat(parts) };
  } catch (error) {
    return { bytes: Buffer.concat(parts), error };
  }
}

async function until<T>(probe: () => T | undefined, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const got = probe();
    if (got !== undefined) return got;
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('a chunk whose bytes no longer hash to its name', () => {
  it('fails the HTTP download, marks the image damaged, and is quarantined until an upload brings its bytes again', async () => {
    const s = server as RunningImageServer;
    const images = new GlanceHttpClient(s.url, 'no-auth');
    const { disk, map } = diskWith([[0, 4 * MiB]]);
    const id = await composedRawImage(s.service, disk, map, 'rotting');
    expect((await downloaded(images, id)).bytes.equals(disk)).toBe(true);

    // The chunk of the disk's third MiB, as stored.
    const victim = sha256(disk.subarray(2 * MiB, 2 * MiB + 256 * 1024));
    const path = (await chunkFiles()).get(victim);
    expect(path).toBeDefined();
    await flipByte(path as string, 1000);

    const got = await downloaded(images, id);
    expect(got.error).toBeDefined();
    expect(got.bytes.length).toBeLessThan(disk.length);
    const damaged = await until(() => s.service.get(admin, id).snapshot_damaged);
    expect(damaged).toContain(`download: chunk ${victim} does not hash to its name`);
    expect((await images.get(id)).snapshot_damaged).toBe(damaged);
    expect(s.service.get(admin, id).status).toBe('active');
    expect((await readdir(join(dir, 'quarantine', 'chunks'))).map((f) => f.split('.')[0])).toEqual([victim]);
    expect((await chunkFiles()).has(victim)).toBe(false);

    // Still no whole download while the chunk is gone; a new upload of the same bytes heals both.
    expect((await downloaded(images, id)).error).toBeDefined();
    const again = await composedRawImage(s.service, disk, map, 'same bytes');
    expect((await chunkFiles()).has(victim)).toBe(true);
    expect((await downloaded(images, again)).bytes.equals(disk)).toBe(true);
    expect((await downloaded(images, id)).bytes.equals(disk)).toBe(true);
  });

  it('a create body or commit cannot set the damage mark', async () => {
    const s = server as RunningImageServer;
    await expect(s.service.create(admin, { name: 'x', snapshot_damaged: 'no' })).rejects.toThrow(/read-only/);
  });
});
