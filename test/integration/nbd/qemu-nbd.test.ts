// The NBD client against real qemu-nbd exports of qcow2 images: bytes, allocation map, reads in
// flight and beyond the server's maximum payload, dirty bitmaps, a clean NBD_CMD_DISC, and the
// server killed mid-read.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  allocationMap,
  dirtyBitmapContext,
  dirtyRanges,
  NbdClient,
  NbdConnectionError,
  NbdMetaContextError,
  NbdOptionError,
  NBD_REP_ERR_UNKNOWN,
} from '../../../src/nbd';
import { qemuImg, qemuIo, startQemuNbd, type QemuNbd } from './qemu-export';

const KiB = 1024;
const MiB = 1024 * KiB;
const SIZE = 64 * MiB;

let dir: string;
let image: string;
let bitmapImage: string;
const servers: QemuNbd[] = [];
let main: QemuNbd;

/** The guest-visible content of `image`, to check reads against. */
const model = Buffer.alloc(SIZE);

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'nbd-it-'));
  image = path.join(dir, 'disk.qcow2');
  await qemuImg('create', '-q', '-f', 'qcow2', image, String(SIZE));
  await qemuIo(image, 'write -P 0xab 1M 64k', 'write -P 0xcd 40M 3M');
  model.fill(0xab, MiB, MiB + 64 * KiB);
  model.fill(0xcd, 40 * MiB, 43 * MiB);

  // Data written before the bitmap exists is allocated but clean; writes after it are dirty.
  bitmapImage = path.join(dir, 'incremental.qcow2');
  await qemuImg('create', '-q', '-f', 'qcow2', bitmapImage, String(SIZE));
  await qemuIo(bitmapImage, 'write -P 0x22 20M 1M');
  await qemuImg('bitmap', '--add', '--enable', bitmapImage, 'b0');
  await qemuIo(bitmapImage, 'write -P 0x11 2M 128k', 'write -P 0x33 10M 64k');

  main = await startQemuNbd(dir, 'main', image, { exportName: 'disk' });
  servers.push(main);
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.kill()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function connect(socketPath = main.socketPath, extra: Partial<Parameters<typeof NbdClient.connect>[0]> = {}): Promise<NbdClient> {
  return NbdClient.connect({ socketPath, exportName: 'disk', ...extra });
}

describe('qemu-nbd export', () => {
  it('negotiates the export: size, read-only, block sizes, base:allocation', async () => {
    const client = await connect();
    expect(client.exportSize).toBe(SIZE);
    expect(client.readOnly).toBe(true);
    expect(client.structuredReplies).toBe(true);
    expect(client.blockSize.advertised).toBe(true);
    expect(client.blockSize.maximum).toBe(32 * MiB);
    expect(client.contexts.has('base:allocation')).toBe(true);
    await client.close();
  });

  it('reads the written bytes, holes as zeros, unaligned ranges included', async () => {
    const client = await connect();
    expect((await client.read(MiB, 64 * KiB)).equals(model.subarray(MiB, MiB + 64 * KiB))).toBe(true);
    expect((await client.read(MiB - 4096, 8192)).equals(model.subarray(MiB - 4096, MiB + 4096))).toBe(true);
    expect((await client.read(MiB + 64 * KiB - 3, 10)).equals(model.subarray(MiB + 64 * KiB - 3, MiB + 64 * KiB + 7))).toBe(true);
    expect((await client.read(30 * MiB, MiB)).every((b) => b === 0)).toBe(true);
    await client.close();
  });

  it('maps data apart from unallocated space, covering the whole export', async () => {
    const client = await connect();
    const map = await allocationMap(client);
    expect(map.filter((e) => e.kind === 'data')).toEqual([
      { offset: MiB, length: 64 * KiB, kind: 'data' },
      { offset: 40 * MiB, length: 3 * MiB, kind: 'data' },
    ]);
    expect(map.reduce((n, e) => n + e.length, 0)).toBe(SIZE);
    expect(map[0]).toMatchObject({ offset: 0, kind: 'hole' });
    await client.close();
  });

  it('serves many reads in flight at once, each with its own bytes', async () => {
    const client = await connect(main.socketPath, { maxInFlight: 8 });
    const offsets = Array.from({ length: 64 }, (_, i) => (i % 2 === 0 ? MiB + (i % 16) * 4096 : 40 * MiB + i * 37 * KiB));
    const pending = offsets.map((o) => client.read(o, 16 * KiB));
    expect(client.inFlight).toBeGreaterThan(1);
    const reads = await Promise.all(pending);
    reads.forEach((b, i) => expect(b.equals(model.subarray(offsets[i], (offsets[i] as number) + 16 * KiB))).toBe(true));
    await client.close();
  });

  it("splits a read larger than the server's 32 MiB maximum payload", async () => {
    const client = await connect(main.socketPath, { maxRequestBytes: 64 * MiB });
    expect(client.maxRequestLength).toBe(32 * MiB);
    const b = await client.read(8 * MiB, 40 * MiB);
    expect(b.equals(model.subarray(8 * MiB, 48 * MiB))).toBe(true);
    await client.close();
  });

  it('fails with NbdOptionError for an unknown export and NbdMetaContextError for a bitmap not exported', async () => {
    await expect(NbdClient.connect({ socketPath: main.socketPath, exportName: 'nope' })).rejects.toMatchObject({ name: 'NbdOptionError', code: NBD_REP_ERR_UNKNOWN });
    const err = await connect(main.socketPath, { metaContexts: ['base:allocation', dirtyBitmapContext('b0')] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NbdMetaContextError);
    expect(err).toMatchObject({ missing: ['qemu:dirty-bitmap:b0'] });
    expect(err).not.toBeInstanceOf(NbdOptionError);
    // The server is still fine after both refusals.
    const client = await connect();
    expect((await client.read(MiB, 4096)).every((b) => b === 0xab)).toBe(true);
    await client.close();
  });

  it('reports the dirty extents of an exported bitmap', async () => {
    const nbd = await startQemuNbd(dir, 'bitmap', bitmapImage, { exportName: 'disk', bitmap: 'b0' });
    servers.push(nbd);
    const client = await connect(nbd.socketPath, { metaContexts: ['base:allocation', dirtyBitmapContext('b0')] });
    expect([...client.contexts.keys()].sort()).toEqual(['base:allocation', 'qemu:dirty-bitmap:b0']);
    expect(await dirtyRanges(client, dirtyBitmapContext('b0'))).toEqual([
      { offset: 2 * MiB, length: 128 * KiB },
      { offset: 10 * MiB, length: 64 * KiB },
    ]);
    const data = (await allocationMap(client)).filter((e) => e.kind === 'data');
    expect(data).toEqual([
      { offset: 2 * MiB, length: 128 * KiB, kind: 'data' },
      { offset: 10 * MiB, length: 64 * KiB, kind: 'data' },
      { offset: 20 * MiB, length: MiB, kind: 'data' },
    ]);
    await client.close();
  });

  it('ends with NBD_CMD_DISC: a non-persistent qemu-nbd exits cleanly after close()', async () => {
    const nbd = await startQemuNbd(dir, 'once', image, { exportName: 'disk', persistent: false });
    servers.push(nbd);
    const client = await connect(nbd.socketPath);
    await client.read(0, 4096);
    await client.close();
    expect(client.closed).toBe(true);
    await expect(nbd.exited).resolves.toBe(0);
  });

  it('rejects pending reads with NbdConnectionError when qemu-nbd is killed mid-read', async () => {
    const nbd = await startQemuNbd(dir, 'victim', image, { exportName: 'disk' });
    servers.push(nbd);
    // 1024 sequential 64 KiB round trips: the kill lands while the read is under way.
    const client = await connect(nbd.socketPath, { maxInFlight: 1, maxRequestBytes: 64 * KiB });
    const read = client.read(0, SIZE);
    await new Promise((r) => setTimeout(r, 5));
    expect(client.inFlight).toBeGreaterThan(0);
    nbd.process.kill('SIGKILL');
    const err = await read.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NbdConnectionError);
    expect(client.closed).toBe(true);
    await expect(client.read(0, 4096)).rejects.toBeInstanceOf(NbdConnectionError);
  });
});
