// A guest can fragment its own disk: a disk of 20,000 extents (4 KiB of data every 8 KiB, holes
// between) served by a read-only qemu-nbd still snapshots through the host's one-pass stream into
// the real image service over HTTP. Its layout is far over the 64 KiB metadata body limit; the
// service takes it because the open route's limit follows the image size cap.
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startReadOnlyExport, stopReadOnlyExport } from '../../../src/host/nbd-export';
import { streamImage } from '../../../src/host/image-stream';
import { runToolOutput } from '../../../src/process/tool-process';
import { GlanceHttpClient } from '../../../src/images/client';
import { allocationMap, NbdClient } from '../../../src/nbd';
import { downloadImage } from '../../support/image-bytes';
import { startFixture, type ImageServerFixture } from '../images/image-server-fixture';

const KiB = 1024;
const STRIDES = 10_000;

let dir: string;
let fixture: ImageServerFixture;
const loc = (): { socketPath: string; pidFile: string } => ({ socketPath: path.join(dir, 'export.sock'), pidFile: path.join(dir, 'qemu-nbd.pid') });

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'fragmented-stream-'));
  fixture = await startFixture();
});

afterAll(async () => {
  await stopReadOnlyExport(loc()).catch(() => undefined);
  await fixture?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

it('a disk of 20,000 extents snapshots whole through the host’s stream', async () => {
  const disk = path.join(dir, 'disk.raw');
  const file = await open(disk, 'w');
  for (let i = 0; i < STRIDES; i++) await file.write(randomBytes(4 * KiB), 0, 4 * KiB, i * 8 * KiB);
  await file.truncate(STRIDES * 8 * KiB);
  await file.close();
  await startReadOnlyExport({ diskPath: disk, format: 'raw', backing: [], exportName: 'vda', ...loc() });
  const nbd = await NbdClient.connect({ socketPath: loc().socketPath, exportName: 'vda' });
  const map = { virtualSize: nbd.exportSize, extents: await allocationMap(nbd) };
  await nbd.close();
  expect(map.extents.length).toBeGreaterThanOrEqual(20_000);

  const images = new GlanceHttpClient(fixture.server.url);
  const image = await images.create({ name: 'fragmented', disk_format: 'qcow2', container_format: 'bare' });
  const out = await streamImage({ images, imageId: image.id, format: 'qcow2', socketPath: loc().socketPath, exportName: 'vda', map, exportId: 'export-a' });
  expect(out.image).toMatchObject({ status: 'active', size: out.size });
  const downloaded = await downloadImage(images, image.id, dir);
  const compared = await runToolOutput('qemu-img', ['compare', '-q', '-f', 'qcow2', '-F', 'raw', downloaded, disk], { okExitCodes: [0, 1] });
  expect(compared.exitCode).toBe(0);
});
