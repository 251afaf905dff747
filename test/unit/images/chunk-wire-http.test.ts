// The named upload's chunk routes over real HTTP, through GlanceHttpClient: the capability, the
// refusals a route makes before it stores anything (no named session, a bad name, a body past a
// chunk, a question too long), and an answer that names chunks it was not asked about is refused.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GlanceHttpClient, MAX_KNOWN_QUERY, NAMED_CHUNK_BYTES, encodeMap, type LogicalLayout } from '../../../src/images/client';
import { ChunkClient } from '../../../src/images/client/chunk-client';
import { startImageServer, type RunningImageServer } from '../../../src/images/service';
import { allDataRawLayout } from '../../support/raw-layout';

let dir: string;
let server: RunningImageServer;
let images: GlanceHttpClient;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'chunk-wire-'));
  server = await startImageServer({ port: 0, dataDir: dir, maxImageBytes: 64 * 1024 * 1024 });
  images = new GlanceHttpClient(server.url);
});
afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const layout: LogicalLayout = { format: 'raw', map: encodeMap({ virtualSize: NAMED_CHUNK_BYTES, extents: [{ offset: 0, length: NAMED_CHUNK_BYTES, kind: 'data' }] }), staged: 'chunk-names' };

it('the service says it takes named uploads', async () => {
  expect(await images.namesChunks()).toBe(true);
});

it('refuses chunk calls on an image without a session (404) or whose session stages guest data (409), and stores nothing', async () => {
  const id = (await images.create({ name: 'plain', disk_format: 'raw', container_format: 'bare' })).id;
  const bytes = randomBytes(1024);
  await expect(images.putChunk(id, sha(bytes), bytes)).rejects.toMatchObject({ status: 404 });
  await images.openStagedUpload(id, 1024, 't', allDataRawLayout(1024));
  await expect(images.knownChunks(id, [sha(bytes)])).rejects.toMatchObject({ status: 409 });
  expect(await server.service.chunkStats()).toEqual({ chunks: 0, bytes: 0 });
});

it('refuses a bad name, a body past a chunk, and a question too long, before anything is stored', async () => {
  const id = (await images.create({ name: 'named', disk_format: 'raw', container_format: 'bare' })).id;
  await images.openStagedUpload(id, 32, 't', layout);
  const put = (name: string, body: Buffer): Promise<number> =>
    new Promise((resolve, reject) => {
      const req = request(`${server.url}/v2/images/${id}/chunks/${name}`, { method: 'PUT', headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': body.length } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end(body);
    });
  expect(await put('NOT-HEX', Buffer.alloc(10, 1))).toBe(400);
  const big = randomBytes(NAMED_CHUNK_BYTES + 1);
  expect(await put(sha(big), big)).toBe(413);
  await expect(images.knownChunks(id, Array.from({ length: MAX_KNOWN_QUERY + 1 }, (_, i) => sha(Buffer.from([i & 255, i >> 8]))))).rejects.toMatchObject({ status: 400 });
  expect(await server.service.chunkStats()).toEqual({ chunks: 0, bytes: 0 });
});

it('refuses an answer naming chunks it was not asked about', async () => {
  const asked = sha(Buffer.from('asked'));
  const client = new ChunkClient(async () => {
    const { Readable } = await import('node:stream');
    const res = Object.assign(Readable.from([Buffer.from(JSON.stringify({ known: [sha(Buffer.from('other'))] }))]), { statusCode: 200, headers: {} });
    return res as unknown as import('node:http').IncomingMessage;
  });
  await expect(client.known('6f0e6a9e-2d59-4d0b-8a43-2a8f9e0c1b11', [asked])).rejects.toThrow(/not asked about/);
});
