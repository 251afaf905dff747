// Connections and slow uploads are bounded. A slow-loris client over a real socket (headers and a
// few bytes, then silence) is cut after the body idle timeout and leaves the image as it was; a
// slow but steady client is not; past the cap on concurrent uploads the next gets 503 with
// Retry-After before a byte of its body is read.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHttpApp } from '../../../src/http';
import { startImageServer, type RunningImageServer } from '../../../src/images/service';
import { imageLimitsFromEnv } from '../../../src/images/service/image-limits-config';
import { allDataRawOpen } from '../../support/raw-layout';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
let dir: string;
let server: RunningImageServer;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'image-upload-limits-'));
  server = await startImageServer({ port: 0, dataDir: dir, maxImageBytes: 1024 * 1024, uploadLimits: { maxConcurrentUploads: 1, bodyIdleTimeoutMs: 400 } });
});
afterEach(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

async function createImage(): Promise<string> {
  const res = await fetch(`${server.url}/v2/images`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'x', disk_format: 'raw', container_format: 'bare' }) });
  return ((await res.json()) as { id: string }).id;
}
const statusOf = async (id: string): Promise<string> => ((await (await fetch(`${server.url}/v2/images/${id}`)).json()) as { status: string }).status;
/** The status once the service has wound the cut request down (it notices the close a moment later). */
async function settledStatus(id: string): Promise<string> {
  for (let i = 0; i < 100; i += 1) {
    const status = await statusOf(id);
    if (status !== 'saving') return status;
    await sleep(20);
  }
  return statusOf(id);
}

/** Opens a raw connection and sends a request's head, promising a body it may never send. */
/** A request written by hand; `answered` settles when the first bytes of the answer arrive. */
function rawRequest(method: string, path: string, headers: Record<string, string>): { socket: Socket; closed: Promise<string>; answered: Promise<void> } {
  const { port } = server.address;
  const socket = connect(port, '127.0.0.1');
  let received = '';
  let answer: () => void = () => undefined;
  const answered = new Promise<void>((resolve) => (answer = resolve));
  socket.on('data', (d: Buffer) => {
    received += d.toString('latin1');
    answer();
  });
  const closed = new Promise<string>((resolve) => socket.on('close', () => resolve(received)));
  socket.on('error', () => undefined);
  const head = [`${method} ${path} HTTP/1.1`, 'Host: localhost', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), '', ''].join('\r\n');
  socket.write(head);
  return { socket, closed, answered };
}

it('cuts a plain PUT whose client falls silent, discards its bytes and leaves the image queued', async () => {
  const id = await createImage();
  const started = Date.now();
  const { socket, closed } = rawRequest('PUT', `/v2/images/${id}/file`, { 'Content-Type': 'application/octet-stream', 'Content-Length': '1000' });
  socket.write(Buffer.alloc(10, 7));
  await closed;
  expect(Date.now() - started).toBeLessThan(5000);
  expect(await settledStatus(id)).toBe('queued');
  expect(await readdir(join(dir, 'staging'))).toEqual([]);
  expect(await readdir(join(dir, 'files'))).toEqual([]);
  // The image takes its data afterwards, and the cut upload no longer counts against the cap.
  const put = await fetch(`${server.url}/v2/images/${id}/file`, { method: 'PUT', headers: { 'Content-Type': 'application/octet-stream' }, body: Buffer.from('abc') });
  expect(put.status).toBe(204);
  expect(await statusOf(id)).toBe('active');
});

it('cuts a silent resumable append; the session keeps the whole bytes it got and goes on', async () => {
  const id = await createImage();
  const open = await fetch(`${server.url}/v2/images/${id}/resumable`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(allDataRawOpen(512, 't')) });
  expect(open.status).toBe(201);
  const { socket, closed } = rawRequest('PATCH', `/v2/images/${id}/resumable`, { 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0', 'Content-Length': '20' });
  socket.write(Buffer.alloc(10, 7));
  await closed;
  let offset = '';
  for (let i = 0; i < 50 && offset !== '10'; i += 1) {
    offset = (await fetch(`${server.url}/v2/images/${id}/resumable`, { method: 'HEAD' })).headers.get('upload-offset') ?? '';
    if (offset !== '10') await sleep(50);
  }
  expect(offset).toBe('10');
  const rest = await fetch(`${server.url}/v2/images/${id}/resumable`, { method: 'PATCH', headers: { 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '10' }, body: Buffer.alloc(10, 7) });
  expect(rest.status).toBe(204);
});

it('does not cut a slow client that keeps sending', async () => {
  const id = await createImage();
  const { socket, closed, answered } = rawRequest('PUT', `/v2/images/${id}/file`, { 'Content-Type': 'application/octet-stream', 'Content-Length': '12' });
  for (let i = 0; i < 12; i += 1) {
    socket.write(Buffer.from([i]));
    await sleep(150);
  }
  // Ended once answered: a client that hangs up first may never hear the answer (a loaded machine is slow to give it).
  await answered;
  socket.end();
  expect(await closed).toMatch(/^HTTP\/1\.1 204/);
  expect(await statusOf(id)).toBe('active');
});

it('refuses an upload past the cap with 503 and Retry-After, reading none of it, and takes it once there is room', async () => {
  await server.close();
  server = await startImageServer({ port: 0, dataDir: dir, maxImageBytes: 1024 * 1024, uploadLimits: { maxConcurrentUploads: 1, bodyIdleTimeoutMs: 10_000 } });
  const busy = await createImage();
  const waiting = await createImage();
  const { socket, closed, answered } = rawRequest('PUT', `/v2/images/${busy}/file`, { 'Content-Type': 'application/octet-stream', 'Content-Length': '4' });
  socket.write(Buffer.from('ab'));
  await sleep(100);
  const refused = await fetch(`${server.url}/v2/images/${waiting}/file`, { method: 'PUT', headers: { 'Content-Type': 'application/octet-stream' }, body: Buffer.from('xyz') });
  expect(refused.status).toBe(503);
  expect(refused.headers.get('retry-after')).toBe('5');
  expect(await refused.json()).toMatchObject({ error: { code: 503 } });
  expect(await statusOf(waiting)).toBe('queued');
  socket.write(Buffer.from('cd'));
  await answered;
  socket.end();
  expect(await closed).toMatch(/^HTTP\/1\.1 204/);
  const taken = await fetch(`${server.url}/v2/images/${waiting}/file`, { method: 'PUT', headers: { 'Content-Type': 'application/octet-stream' }, body: Buffer.from('xyz') });
  expect(taken.status).toBe(204);
});

it('sets the connection, request and keep-alive timeouts from the environment, with defaults', () => {
  const limits = imageLimitsFromEnv({ SNAP_IMAGE_REQUEST_TIMEOUT_MS: '90000', SNAP_IMAGE_KEEP_ALIVE_TIMEOUT_MS: '5000' });
  expect(limits).toMatchObject({ idleTimeoutMs: 300_000, requestTimeoutMs: 90_000, keepAliveTimeoutMs: 5000, uploadLimits: { maxConcurrentUploads: 64, bodyIdleTimeoutMs: 120_000 } });
  expect(() => imageLimitsFromEnv({ SNAP_IMAGE_BODY_IDLE_TIMEOUT_MS: '0' })).toThrow(/SNAP_IMAGE_BODY_IDLE_TIMEOUT_MS/);
  const app = createHttpApp({ bodyLimit: 1, idleTimeoutMs: limits.idleTimeoutMs, requestTimeoutMs: limits.requestTimeoutMs, keepAliveTimeoutMs: limits.keepAliveTimeoutMs });
  expect([app.server.timeout, app.server.requestTimeout, app.server.keepAliveTimeout]).toEqual([300_000, 90_000, 5000]);
});
