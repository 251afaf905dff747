// A member must not be able to take the image service down for everyone: a logical upload's layout
// is bounded by the image size cap before anything is allocated or written (the three-request
// attack: create, open a 16 TiB disk of holes with size 0, commit), while a fragmented disk of
// 20,000 extents still snapshots through the host's own client. Over real HTTP.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { GlanceHttpClient, encodeMap, fitLayout, piecesLength, sentPieces, type LogicalLayout } from '../../../src/images/client';
import { startImageServer, type RunningImageServer } from '../../../src/images/service';
import { emit, planImage, type AllocationMap, type Extent } from '../../../src/qcow2';

const MiB = 1024 * 1024;
const TiB = 1024 * 1024 * MiB;

let dir: string;
let server: RunningImageServer | undefined;

const start = async (maxImageBytes: number): Promise<RunningImageServer> => {
  server = await startImageServer({ port: 0, dataDir: dir, maxImageBytes });
  return server;
};

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'image-bounds-'));
  server = undefined;
});
afterEach(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${server?.url ?? ''}${path}`, { method, headers: { 'Content-Type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, json: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

const holes = (virtualSize: number, format: 'qcow2' | 'raw'): LogicalLayout => ({ format, map: { virtualSize, extents: [[0, virtualSize, 'h']] } });

/** Nothing of a refused open is on disk: no session, no index, no chunk; the image is still queued. */
async function expectNothingWritten(id: string): Promise<void> {
  expect((await call('GET', `/v2/images/${id}`)).json.status).toBe('queued');
  expect(await readdir(join(dir, 'resumable'))).toEqual([]);
  expect(await readdir(join(dir, 'indexes'))).toEqual([]);
  expect(await readdir(join(dir, 'chunks'))).toEqual([]);
}

describe('a logical upload is bounded by the image size cap before anything is written', () => {
  it('the three-request attack: a 16 TiB disk of holes, opened with size 0, is refused with 413 and the commit finds no session', async () => {
    await start(1 * TiB);
    const id = (await call('POST', '/v2/images', { name: 'attack', disk_format: 'qcow2', container_format: 'bare' })).json.id as string;
    const opened = await call('POST', `/v2/images/${id}/resumable`, { size: 0, token: 't', layout: holes(16 * TiB, 'qcow2') });
    expect(opened.status).toBe(413);
    expect(String((opened.json.error as { message: string }).message)).toMatch(/virtual size .* exceeds the image size cap/);
    expect((await call('POST', `/v2/images/${id}/resumable/commit`, {})).status).toBe(404);
    await expectNothingWritten(id);
  });

  it.each([
    ['a 20 TiB raw disk (the commit would hash 20 TiB of zeros)', holes(20 * TiB, 'raw'), 413],
    ['a virtual size that is not whole sectors', holes(64 * MiB + 100, 'qcow2'), 400],
    ['a disk just over the cap', holes(64 * MiB + 512, 'raw'), 413],
  ])('refuses %s', async (_what, layout, status) => {
    await start(64 * MiB);
    const id = (await call('POST', '/v2/images', { name: 'x' })).json.id as string;
    expect((await call('POST', `/v2/images/${id}/resumable`, { size: 0, token: 't', layout })).status).toBe(status);
    await expectNothingWritten(id);
  });

  it('counts the qcow2 metadata: a disk at the cap whose qcow2 would be larger than the cap is refused', async () => {
    await start(8 * MiB);
    const layout: LogicalLayout = { format: 'qcow2', map: { virtualSize: 8 * MiB, extents: [[0, 8 * MiB, 'd']] } };
    const id = (await call('POST', '/v2/images', { name: 'full' })).json.id as string;
    const opened = await call('POST', `/v2/images/${id}/resumable`, { size: 8 * MiB, token: 't', layout });
    expect(opened.status).toBe(413);
    expect(String((opened.json.error as { message: string }).message)).toMatch(/qcow2 image of this disk would be \d+ bytes/);
    await expectNothingWritten(id);
    // The same disk served raw is exactly the cap: taken.
    expect((await call('POST', `/v2/images/${id}/resumable`, { size: 8 * MiB, token: 't', layout: { ...layout, format: 'raw' } })).status).toBe(201);
  });

  it('refuses more extents than the cap allows (65,536 at a 64 MiB cap), with 413 and nothing written', async () => {
    await start(64 * MiB);
    const id = (await call('POST', '/v2/images', { name: 'x' })).json.id as string;
    const map = fragmented(70_000).map;
    const layout: LogicalLayout = { format: 'qcow2', map: encodeMap(map) };
    const opened = await call('POST', `/v2/images/${id}/resumable`, { size: piecesLength(sentPieces(layout)), token: 't', layout });
    expect(opened.status).toBe(413);
    expect(String((opened.json.error as { message: string }).message)).toMatch(/70000 extents/);
    await expectNothingWritten(id);
  });
});

/** A disk of `extents` alternating 512-byte data and hole extents, and its bytes. */
function fragmented(extents: number): { disk: Buffer; map: AllocationMap } {
  const disk = Buffer.alloc(extents * 512);
  const list: Extent[] = [];
  for (let i = 0; i < extents; i++) {
    const data = i % 2 === 0;
    if (data) randomBytes(512).copy(disk, i * 512);
    list.push({ offset: i * 512, length: 512, kind: data ? 'data' : 'hole' });
  }
  return { disk, map: { virtualSize: disk.length, extents: list } };
}

describe('a fragmented disk still snapshots', () => {
  it('20,000 extents go through the host’s client (a layout far over the metadata body limit) and download as the writer’s image', async () => {
    const s = await start(1024 * MiB);
    const images = new GlanceHttpClient(s.url);
    const { disk, map } = fragmented(20_000);
    const layout: LogicalLayout = { format: 'qcow2', map: encodeMap(map) };
    expect(JSON.stringify(layout).length).toBeGreaterThan(64 * 1024);
    const staged = Buffer.concat(sentPieces(layout).map((p) => disk.subarray(p.offset, p.offset + p.length)));
    const id = (await images.create({ name: 'fragmented', disk_format: 'qcow2', container_format: 'bare' })).id;
    expect(await images.openStagedUpload(id, staged.length, 'export-1', layout)).toMatchObject({ offset: 0, size: staged.length });
    expect(await images.appendStaged(id, 0, Readable.from([staged]), { length: staged.length })).toBe(staged.length);
    const active = await images.commitStaged(id, {});
    const expected: Buffer[] = [];
    for await (const b of emit(planImage(map, { format: 'qcow2' }), (o, l) => disk.subarray(o, o + l))) expected.push(Buffer.from(b));
    const got: Buffer[] = [];
    for await (const b of await images.download(id)) got.push(b as Buffer);
    expect(Buffer.concat(got).equals(Buffer.concat(expected))).toBe(true);
    expect(active.size).toBe(Buffer.concat(expected).length);
  }, 60_000);

  it('a disk fragmented past what any service takes (140,000 extents) goes coarser, as the host sends it, and downloads whole', async () => {
    const s = await start(256 * MiB);
    const images = new GlanceHttpClient(s.url);
    const { disk, map } = fragmented(140_000);
    const layout = fitLayout({ format: 'raw', map: encodeMap(map) });
    const staged = Buffer.concat(sentPieces(layout).map((p) => disk.subarray(p.offset, p.offset + p.length)));
    const id = (await images.create({ name: 'shredded', disk_format: 'raw', container_format: 'bare' })).id;
    await images.openStagedUpload(id, staged.length, 'export-1', layout);
    await images.appendStaged(id, 0, Readable.from([staged]), { length: staged.length });
    await images.commitStaged(id, {});
    const got: Buffer[] = [];
    for await (const b of await images.download(id)) got.push(b as Buffer);
    expect(Buffer.concat(got).equals(disk)).toBe(true);
  }, 60_000);
});
