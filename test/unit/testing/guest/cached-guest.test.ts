import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { cachedGuest, sourceDigest, type GuestManifest } from '../../../../src/testing/guest/guest-builder';

let cache: string;
const packages = [{ name: 'linux-image-cloud-amd64', version: '6.1.0' }];

async function build(key: string): Promise<void> {
  const dir = path.join(cache, key);
  await mkdir(dir);
  const manifest: GuestManifest = { key, kernelRelease: '6.1.0-cloud-amd64', packages, initrdSha256: '0'.repeat(64), builtAt: '2026-12-07T00:00:00Z' };
  await writeFile(path.join(dir, 'manifest.json'), JSON.stringify(manifest));
}

beforeEach(async () => {
  cache = await mkdtemp(path.join(os.tmpdir(), 'guest-cache-'));
});
afterEach(async () => {
  await rm(cache, { recursive: true, force: true });
});

describe('cachedGuest', () => {
  it("takes the build of this checkout's sources, never one of older sources sharing the cache", async () => {
    await build('0123456789abcdef');
    expect(await cachedGuest(cache)).toBeNull();
    const current = await sourceDigest(packages);
    await build(current);
    expect((await cachedGuest(cache))?.dir).toBe(path.join(cache, current));
  });
});
