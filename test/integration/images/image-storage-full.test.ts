// A full disk under the image service (real, size-limited tmpfs mounts, no mocks): a write that
// fails with ENOSPC changes nothing, in memory as on disk. No image turns active without its
// bytes, a retry fails honestly (413, Glance's "storage media is full") for as long as the disk is
// full, and the same call succeeds once space is freed. Needs root for mount(8); CI runs as root.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { GlanceHttpClient, ImageTooLarge, type LogicalLayout } from '../../../src/images/client';
import { startImageServer, type RunningImageServer } from '../../../src/images/service';
import { allDataRawLayout } from '../../support/raw-layout';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn('image-storage-full: skipped, mounting a small filesystem needs root (CI runs as root)');
const describeAsRoot = isRoot ? describe : describe.skip;

let base: string;
const mounts: string[] = [];
let server: RunningImageServer | undefined;

async function mountTmpfs(dir: string, bytes: number): Promise<void> {
  await mkdir(dir, { recursive: true });
  await run('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0700`, 'tmpfs', dir]);
  mounts.push(dir);
}

/** Fills the filesystem holding `path` to the last byte; returns the filler's path. */
async function fill(path: string): Promise<string> {
  const handle = await open(path, 'w');
  try {
    for (const size of [MiB, 4096, 1]) {
      const block = Buffer.alloc(size);
      for (;;) {
        const written = await handle.write(block).then(
          (r) => r.bytesWritten,
          (err: NodeJS.ErrnoException) => {
            if (err.code !== 'ENOSPC') throw err;
            return 0;
          },
        );
        if (written < size) break;
      }
    }
  } finally {
    await handle.close();
  }
  return path;
}

const startOn = async (dataDir: string): Promise<GlanceHttpClient> => {
  await server?.close();
  server = await startImageServer({ port: 0, dataDir, maxImageBytes: 64 * MiB });
  return new GlanceHttpClient(server.url);
};

/** A full logical upload of `disk` (raw, all data): the staged bytes are the disk's. */
const layoutOf = (disk: Buffer): LogicalLayout => allDataRawLayout(disk.length);

async function stage(images: GlanceHttpClient, id: string, disk: Buffer): Promise<void> {
  await images.openStagedUpload(id, disk.length, 'export-1', layoutOf(disk));
  await images.appendStaged(id, 0, Readable.from([disk]), { length: disk.length });
}

async function downloaded(images: GlanceHttpClient, id: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await images.download(id)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const recordOnDisk = async (dataDir: string, id: string): Promise<unknown> => JSON.parse(await readFile(join(dataDir, 'records', `${id}.json`), 'utf8'));
const refusal = (call: Promise<unknown>): Promise<unknown> => call.then(() => 'succeeded', (e: unknown) => e);

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'image-storage-full-'));
});
afterEach(async () => {
  await server?.close().catch(() => undefined);
  server = undefined;
  for (const dir of mounts.splice(0).reverse()) await run('umount', [dir]).catch(() => run('umount', ['-l', dir]));
  await rm(base, { recursive: true, force: true });
});

describeAsRoot('a full disk under the image service', () => {
  it('a commit whose record cannot be written leaves the image uploading with its bytes, not active without them', async () => {
    const dataDir = join(base, 'images');
    await mountTmpfs(dataDir, 32 * MiB);
    // The records on a filesystem of their own: the data fits, the record that would make it active does not.
    await mountTmpfs(join(dataDir, 'records'), 64 * 1024);
    let images = await startOn(dataDir);
    const disk = randomBytes(MiB);
    const snap = await images.create({ name: 'snap' });
    const plain = await images.create({ name: 'plain' });
    await stage(images, snap.id, disk);
    const filler = await fill(join(dataDir, 'records', 'filler'));

    for (let attempt = 0; attempt < 2; attempt += 1) {
      // The host's retry of the commit: refused as long as the disk is full, never a success.
      const refused = await refusal(images.commitStaged(snap.id, {}));
      expect(await images.get(snap.id)).toMatchObject({ status: 'uploading', size: null });
      expect(await images.stagedUpload(snap.id)).toMatchObject({ offset: disk.length, size: disk.length });
      expect(await recordOnDisk(dataDir, snap.id)).toMatchObject({ status: 'uploading' });
      expect((await downloaded(images, snap.id)).length).toBe(0);
      expect(refused).toBeInstanceOf(ImageTooLarge);
    }
    // The plain PUT: its claim cannot be written, so the image stays as it was.
    expect(await refusal(images.upload(plain.id, Readable.from([disk]), { length: disk.length }))).toMatchObject({ status: 413 });
    expect((await images.get(plain.id)).status).toBe('queued');
    expect(await recordOnDisk(dataDir, plain.id)).toMatchObject({ status: 'queued' });

    // A restart sees what the disk says: the upload is still there to commit.
    images = await startOn(dataDir);
    expect(server?.service.recovery.resumedUploadIds).toEqual([snap.id]);

    await rm(filler);
    expect(await images.commitStaged(snap.id, {})).toMatchObject({ status: 'active', size: disk.length });
    expect(await downloaded(images, snap.id)).toEqual(disk);
    await images.upload(plain.id, Readable.from([disk]), { length: disk.length });
    expect(await images.get(plain.id)).toMatchObject({ status: 'active', size: disk.length });
    expect(await recordOnDisk(dataDir, snap.id)).toMatchObject({ status: 'active' });
  });

  it('a commit whose chunks do not fit keeps the staged upload, and the same commit succeeds once space is freed', async () => {
    const dataDir = join(base, 'images');
    await mountTmpfs(base, 8 * MiB);
    let images = await startOn(dataDir);
    const disk = randomBytes(2 * MiB);
    const snap = await images.create({ name: 'snap' });
    const late = await images.create({ name: 'late' });
    await stage(images, snap.id, disk);
    const filler = await fill(join(base, 'filler'));

    const refused = await refusal(images.commitStaged(snap.id, {}));
    expect(await images.get(snap.id)).toMatchObject({ status: 'uploading', size: null });
    expect(await images.stagedUpload(snap.id)).toMatchObject({ offset: disk.length });
    expect(refused).toBeInstanceOf(ImageTooLarge);
    // Nothing half-written is left to be taken for an image's data.
    expect(await readdir(join(dataDir, 'indexes'))).toEqual([]);
    // A new upload cannot start either, and leaves its image queued without session files.
    expect(await refusal(images.openStagedUpload(late.id, disk.length, 'export-2', layoutOf(disk)))).toBeInstanceOf(ImageTooLarge);
    expect((await images.get(late.id)).status).toBe('queued');
    expect((await readdir(join(dataDir, 'resumable'))).filter((f) => f.startsWith(late.id))).toEqual([]);

    images = await startOn(dataDir);
    expect(await refusal(images.commitStaged(snap.id, {}))).toBeInstanceOf(ImageTooLarge);
    expect((await images.get(snap.id)).status).toBe('uploading');

    await rm(filler);
    expect(await images.commitStaged(snap.id, {})).toMatchObject({ status: 'active', size: disk.length });
    expect(await downloaded(images, snap.id)).toEqual(disk);
  });
});
