// Dedup across instances through the real stream: two instances made from the same base image (a
// qcow2 overlay each over one base holding 16 MiB of random data), each snapshotted whole through a
// read-only qemu-nbd, our NBD client and the real image service over HTTP. The second sends only
// its own chunks (the bytes the service received, counted by a proxy in front of it), and its image
// downloads whole, identical to its disk, with the disk's logical digest. A chunk sent under a name
// its bytes do not hash to is refused and nothing of it is stored.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { streamImage } from '../../../src/host/image-stream';
import { startReadOnlyExport, stopReadOnlyExport } from '../../../src/host/nbd-export';
import { createQcow2, imagesIdentical, writePattern } from '../../../src/host/qemu-img';
import { GlanceHttpClient, LOGICAL_DIGEST_PROPERTY, NAMED_CHUNK_BYTES, encodeMap, type LogicalLayout } from '../../../src/images/client';
import { allocationMap, NbdClient } from '../../../src/nbd';
import { runTool } from '../../../src/process/tool-process';
import { LOGICAL_DIGEST_ALGORITHM, logicalDigestOf, type AllocationMap } from '../../../src/qcow2';
import { startFaultProxy, type FaultProxy } from '../../support/fault-proxy';
import { downloadImage } from '../../support/image-bytes';
import { startFixture, type ImageServerFixture } from '../images/image-server-fixture';

const MiB = 1024 * 1024;
const SIZE = 64 * MiB;
const BASE_DATA = 16 * MiB;

interface Instance {
  overlay: string;
  map: AllocationMap;
  socketPath: string;
  digest: string;
  stop(): Promise<void>;
}

let dir: string;
let base: string;
let fixture: ImageServerFixture;
let proxy: FaultProxy;
let images: GlanceHttpClient;
const instances: Instance[] = [];

/** An instance's disk: an overlay on the base with its own chunks written (whole 256 KiB chunks, a byte each), exported read-only. */
async function instance(name: string, own: { byte: number; chunk: number }[]): Promise<Instance> {
  const overlay = path.join(dir, `${name}.qcow2`);
  await createQcow2(overlay, { backing: base });
  for (const w of own) await writePattern(overlay, { byte: w.byte, offset: w.chunk * NAMED_CHUNK_BYTES, length: NAMED_CHUNK_BYTES });
  const loc = { socketPath: path.join(dir, `${name}.sock`), pidFile: path.join(dir, `${name}.pid`) };
  await startReadOnlyExport({ diskPath: overlay, format: 'qcow2', backing: [{ path: base, format: 'qcow2' }], exportName: 'vda', ...loc });
  const nbd = await NbdClient.connect({ socketPath: loc.socketPath, exportName: 'vda' });
  const map = { virtualSize: nbd.exportSize, extents: await allocationMap(nbd) };
  await nbd.close();
  const raw = path.join(dir, `${name}.raw`);
  await runTool('qemu-img', ['convert', '-q', '-f', 'qcow2', '-O', 'raw', overlay, raw]);
  const digest = `${LOGICAL_DIGEST_ALGORITHM}:${await logicalDigestOf(createReadStream(raw), SIZE)}`;
  await rm(raw);
  const made = { overlay, map, socketPath: loc.socketPath, digest, stop: async (): Promise<void> => {
      await stopReadOnlyExport(loc).catch(() => undefined);
    } };
  instances.push(made);
  return made;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'named-dedup-'));
  const baseRaw = path.join(dir, 'base.raw');
  await writeFile(baseRaw, Buffer.concat([randomBytes(BASE_DATA), Buffer.alloc(SIZE - BASE_DATA)]));
  base = path.join(dir, 'base.qcow2');
  await runTool('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', baseRaw, base]);
  await rm(baseRaw);
  fixture = await startFixture();
  proxy = await startFaultProxy(fixture.server.address.port);
  images = new GlanceHttpClient(proxy.url);
});

afterAll(async () => {
  for (const i of instances) await i.stop();
  await proxy?.close();
  await fixture?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A full snapshot of the instance; the bytes the image service received for it. */
async function snapshot(of: Instance): Promise<{ id: string; received: number; bytesSent: number }> {
  const id = (await images.create({ name: 'snap', disk_format: 'qcow2', container_format: 'bare' })).id;
  const before = proxy.bodyBytes;
  const outcome = await streamImage({ images, imageId: id, format: 'qcow2', exportName: 'vda', socketPath: of.socketPath, map: of.map, exportId: `export-${id}` });
  expect(outcome.image.status).toBe('active');
  return { id, received: proxy.bodyBytes - before, bytesSent: outcome.bytesSent };
}

async function expectIdentical(id: string, of: Instance): Promise<void> {
  const file = await downloadImage(images, id, dir);
  try {
    expect(await imagesIdentical(file, of.overlay)).toBe(true);
  } finally {
    await rm(file, { force: true });
  }
  expect((await images.get(id)).properties[LOGICAL_DIGEST_PROPERTY]).toBe(of.digest);
}

test('a second instance of the same base image sends only its own chunks, and its image is its disk', async () => {
  expect(await images.namesChunks()).toBe(true);
  const a = await instance('a', [{ byte: 0x61, chunk: 100 }, { byte: 0x62, chunk: 130 }]);
  const b = await instance('b', [{ byte: 0x71, chunk: 3 }, { byte: 0x72, chunk: 101 }, { byte: 0x73, chunk: 200 }]);
  const first = await snapshot(a);
  expect(first.received).toBeGreaterThanOrEqual(BASE_DATA + 2 * NAMED_CHUNK_BYTES);
  const second = await snapshot(b);
  const own = 3 * NAMED_CHUNK_BYTES;
  // Its own three chunks, and the names and questions around them (a few KiB for a 64 MiB disk).
  expect(second.received).toBeGreaterThanOrEqual(own);
  expect(second.received).toBeLessThan(own + 64 * 1024);
  expect(second.bytesSent).toBeLessThanOrEqual(second.received);
  await expectIdentical(first.id, a);
  await expectIdentical(second.id, b);
}, 300_000);

test('a chunk sent under a name its bytes do not hash to is refused, and nothing of it is stored', async () => {
  const id = (await images.create({ name: 'wrong', disk_format: 'raw', container_format: 'bare' })).id;
  const layout: LogicalLayout = { format: 'raw', map: encodeMap({ virtualSize: NAMED_CHUNK_BYTES, extents: [{ offset: 0, length: NAMED_CHUNK_BYTES, kind: 'data' }] }), staged: 'chunk-names' };
  await images.openStagedUpload(id, 32, 'export-wrong', layout);
  const before = await fixture.server.service.chunkStats();
  const bytes = randomBytes(NAMED_CHUNK_BYTES);
  const otherName = createHash('sha256').update(randomBytes(16)).digest('hex');
  await expect(images.putChunk(id, otherName, bytes)).rejects.toMatchObject({ status: 400 });
  expect(await fixture.server.service.chunkStats()).toEqual(before);
  expect(await images.knownChunks(id, [otherName])).toEqual(new Set());
  // The same bytes under their own name are taken.
  const name = createHash('sha256').update(bytes).digest('hex');
  await images.putChunk(id, name, bytes);
  expect(await images.knownChunks(id, [name, otherName])).toEqual(new Set([name]));
}, 60_000);
