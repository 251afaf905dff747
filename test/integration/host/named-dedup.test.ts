// Dedup across instances through the real stream: two instances made from the same base image (a
// qcow2 overlay each over one base holding 16 MiB of random data), each snapshotted whole through a
// read-only qemu-nbd, our NBD client and the real image service over HTTP. The second sends only
// its own chunks (the bytes the service received, counted by a proxy in front of it), and its image
// downloads whole, identical to its disk, with the disk's logical digest. A named upload whose
// connection dies in the middle of a chunk goes on in the next attempt, which sends only the chunks
// the service lacks. A chunk cut short, or sent under a name its bytes do not hash to, is refused
// and nothing of it is stored.
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { streamImage, type StreamImageOptions } from '../../../src/host/image-stream';
import { startReadOnlyExport, stopReadOnlyExport } from '../../../src/host/nbd-export';
import { createQcow2, imagesIdentical, writePattern } from '../../../src/host/qemu-img';
import { GlanceHttpClient, ImageServiceUnavailable, LOGICAL_DIGEST_PROPERTY, NAMED_CHUNK_BYTES, encodeMap, type ImageClient, type LogicalLayout } from '../../../src/images/client';
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

/**
 * An instance's disk, exported read-only: an overlay on the base with its own chunks written (whole
 * 256 KiB chunks, a byte each), or with `random` bytes of random data at its start and no base.
 */
async function instance(name: string, own: { byte: number; chunk: number }[], options: { random?: number } = {}): Promise<Instance> {
  const overlay = path.join(dir, `${name}.qcow2`);
  const backing = options.random === undefined ? [{ path: base, format: 'qcow2' as const }] : [];
  if (options.random === undefined) await createQcow2(overlay, { backing: base });
  else await qcow2Of(Buffer.concat([randomBytes(options.random), Buffer.alloc(SIZE - options.random)]), overlay);
  for (const w of own) await writePattern(overlay, { byte: w.byte, offset: w.chunk * NAMED_CHUNK_BYTES, length: NAMED_CHUNK_BYTES });
  const loc = { socketPath: path.join(dir, `${name}.sock`), pidFile: path.join(dir, `${name}.pid`) };
  await startReadOnlyExport({ diskPath: overlay, format: 'qcow2', backing, exportName: 'vda', ...loc });
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

/** A qcow2 file holding `bytes` (zeros unallocated). */
async function qcow2Of(bytes: Buffer, file: string): Promise<void> {
  const raw = `${file}.raw`;
  await writeFile(raw, bytes);
  await runTool('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, file]);
  await rm(raw);
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'named-dedup-'));
  base = path.join(dir, 'base.qcow2');
  await qcow2Of(Buffer.concat([randomBytes(BASE_DATA), Buffer.alloc(SIZE - BASE_DATA)]), base);
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

function streamOptions(of: Instance, id: string, client: ImageClient = images): StreamImageOptions {
  return { images: client, imageId: id, format: 'qcow2', exportName: 'vda', socketPath: of.socketPath, map: of.map, exportId: `export-${id}` };
}

/** A full snapshot of the instance (into `id`, else a new image); the bytes the image service received for it. */
async function snapshot(of: Instance, id?: string): Promise<{ id: string; received: number; bytesSent: number }> {
  const imageId = id ?? (await images.create({ name: 'snap', disk_format: 'qcow2', container_format: 'bare' })).id;
  const before = proxy.bodyBytes;
  const outcome = await streamImage(streamOptions(of, imageId));
  expect(outcome.image.status).toBe('active');
  return { id: imageId, received: proxy.bodyBytes - before, bytesSent: outcome.bytesSent };
}

/**
 * One chunk PUT whose connection dies half-way through its body (the Content-Length promises the
 * whole chunk); resolves once the socket is closed.
 */
function putHalfAndDrop(id: string, name: string, bytes: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const req = request(`${fixture.server.url}/v2/images/${id}/chunks/${name}`, { method: 'PUT', headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': bytes.length } });
    req.on('error', () => undefined);
    req.on('close', () => resolve());
    req.write(bytes.subarray(0, bytes.length / 2), () => req.destroy());
  });
}

/** The client, whose `after`+1-th chunk PUT loses its connection half-way (and every one after fails at once). */
function breakingAfter(after: number): { client: ImageClient; cut: () => { name: string; bytes: Buffer } | undefined; sent: string[] } {
  let puts = 0;
  let cut: { name: string; bytes: Buffer } | undefined;
  const sent: string[] = [];
  const client = Object.assign(Object.create(images) as GlanceHttpClient, {
    putChunk: async (id: string, name: string, bytes: Buffer, signal?: AbortSignal): Promise<void> => {
      if (++puts <= after) {
        await images.putChunk(id, name, bytes, signal);
        sent.push(name);
        return;
      }
      if (cut === undefined) {
        cut = { name, bytes };
        await putHalfAndDrop(id, name, bytes);
      }
      throw new Error('injected: the connection broke in the middle of a chunk');
    },
  });
  return { client, cut: () => cut, sent };
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

test('a named upload whose connection dies mid-chunk goes on in the next attempt, which sends only the chunks the service lacks', async () => {
  const ownBytes = 12 * MiB;
  const c = await instance('c', [], { random: ownBytes });
  const id = (await images.create({ name: 'broken', disk_format: 'qcow2', container_format: 'bare' })).id;
  const stored = async (): Promise<number> => (await fixture.server.service.chunkStats()).bytes;
  const before = await stored();
  const breaking = breakingAfter(16);
  await expect(streamImage({ ...streamOptions(c, id, breaking.client), maxBreaks: 0 })).rejects.toThrow(/connection broke/);
  // The chunks that arrived whole are the upload's (made durable at its next append of names);
  // the one cut short is not, nor stored.
  const held = await images.knownChunks(id, breaking.sent);
  expect(held).toEqual(new Set(breaking.sent));
  const kept = held.size * NAMED_CHUNK_BYTES;
  expect(kept).toBeGreaterThanOrEqual(16 * NAMED_CHUNK_BYTES);
  expect(kept).toBeLessThan(ownBytes);
  const cut = breaking.cut();
  if (cut === undefined) throw new Error('no chunk was cut');
  expect(await images.knownChunks(id, [cut.name])).toEqual(new Set());
  // A chunk under a name its bytes do not hash to: refused, nothing stored.
  const storedBefore = await stored();
  await expect(images.putChunk(id, createHash('sha256').update('another chunk').digest('hex'), cut.bytes)).rejects.toMatchObject({ status: 400 });
  expect(await stored()).toBe(storedBefore);

  const next = await snapshot(c, id);
  const lacking = ownBytes - kept;
  expect(next.received).toBeGreaterThanOrEqual(lacking);
  // What it lacked, and the names and questions around it (a few KiB for a 64 MiB disk).
  expect(next.received).toBeLessThan(lacking + 64 * 1024);
  expect(next.bytesSent).toBeLessThanOrEqual(next.received);
  expect(await stored()).toBe(before + ownBytes);
  await expectIdentical(id, c);
}, 300_000);

test('a named upload broken at an append of names and at a chunk goes on within the call, each window sent once more at most', async () => {
  // Four windows of data (16 MiB each): a chunk of the second breaks while the first's names are
  // appended; the third's append breaks while the fourth's chunks travel.
  const ownBytes = 56 * MiB;
  const d = await instance('d', [], { random: ownBytes });
  const id = (await images.create({ name: 'broken-within', disk_format: 'qcow2', container_format: 'bare' })).id;
  let appends = 0;
  let puts = 0;
  const client = Object.assign(Object.create(images) as GlanceHttpClient, {
    appendStaged: (...args: Parameters<ImageClient['appendStaged']>) => {
      if (++appends === 3) return Promise.reject(new ImageServiceUnavailable('injected: the append of names broke'));
      return images.appendStaged(...args);
    },
    putChunk: (imageId: string, name: string, bytes: Buffer, signal?: AbortSignal) => {
      if (++puts === 100) return Promise.reject(new ImageServiceUnavailable('injected: a chunk PUT broke'));
      return images.putChunk(imageId, name, bytes, signal);
    },
  });
  const before = proxy.bodyBytes;
  const outcome = await streamImage(streamOptions(d, id, client));
  expect(outcome.image.status).toBe('active');
  expect(appends).toBe(5);
  expect(puts).toBeGreaterThan(ownBytes / NAMED_CHUNK_BYTES);
  // Every chunk once, and the ones of a window the service had not made durable when a break came, once more at most.
  expect(proxy.bodyBytes - before).toBeGreaterThanOrEqual(ownBytes);
  expect(proxy.bodyBytes - before).toBeLessThan(ownBytes + 2 * 16 * MiB);
  await expectIdentical(id, d);
}, 300_000);
