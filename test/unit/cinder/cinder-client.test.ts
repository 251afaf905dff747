// The Cinder client against a local HTTP server answering with bodies recorded from a real Cinder
// (29.0.0, RBD driver): what it sends (paths, microversion, token, force), what it reads (zod), and
// the typed errors (status and fault code) for Cinder's faults, a dead service, a slow one and an
// oversized answer.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CinderClient, CinderError, CinderResponseInvalid, confirmAttachedVolumes, VolumeNotAttached, type CinderConnection } from '../../../src/cinder';
import recorded from './recorded-cinder-answers.json';

const PROJECT = '0123456789abcdef0123456789abcdef';
const VOLUME = recorded.volume.volume.id;
const SNAPSHOT = recorded.snapshot.snapshot.id;

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

type Handler = (req: Seen, res: ServerResponse) => void;

let server: Server;
let handler: Handler;
const seen: Seen[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s: Seen = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      seen.push(s);
      handler(s, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  seen.length = 0;
});

function answer(status: number, body: unknown): Handler {
  return (_req, res) => {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  };
}

function client(overrides: Partial<CinderConnection> = {}): CinderClient {
  const port = (server.address() as AddressInfo).port;
  return new CinderClient({ baseUrl: `http://127.0.0.1:${port}/v3`, projectId: PROJECT, token: () => Promise.resolve(`admin:${PROJECT}`), timeoutMs: 2_000, ...overrides });
}

describe('CinderClient', () => {
  it('shows a volume with its attachments, scoped to the project, at its microversion', async () => {
    handler = answer(200, recorded.volume);
    const volume = await client().showVolume(VOLUME);
    expect(volume).toMatchObject({ id: VOLUME, size: recorded.volume.volume.size, status: recorded.volume.volume.status });
    expect(seen[0]).toMatchObject({ method: 'GET', url: `/v3/${PROJECT}/volumes/${VOLUME}` });
    expect(seen[0]?.headers['openstack-api-version']).toBe('volume 3.66');
    expect(seen[0]?.headers['x-auth-token']).toBe(`admin:${PROJECT}`);
  });

  it("lists a volume's attachment records, keeping only that volume's", async () => {
    const other = { ...recorded.attachments.attachments[0], volume_id: '11111111-2222-4333-8444-555555555555' };
    handler = answer(200, { attachments: [...recorded.attachments.attachments, other] });
    const attachments = await client().listAttachments(VOLUME);
    expect(attachments.map((a) => a.volume_id)).toEqual(recorded.attachments.attachments.map(() => VOLUME));
    expect(seen[0]?.url).toBe(`/v3/${PROJECT}/attachments/detail?volume_id=${VOLUME}`);
  });

  it("creates a snapshot with force, its run name and metadata, as Nova's create_snapshot_force", async () => {
    handler = answer(202, recorded.snapshotCreated);
    const snap = await client().createSnapshot({ volumeId: VOLUME, name: 'snapshot-run-r1', metadata: { snapshot_run: 'r1' } });
    expect(snap).toMatchObject({ id: SNAPSHOT, status: 'creating', volume_id: VOLUME });
    expect(seen[0]).toMatchObject({ method: 'POST', url: `/v3/${PROJECT}/snapshots` });
    expect(JSON.parse(seen[0]?.body ?? '')).toEqual({ snapshot: { volume_id: VOLUME, name: 'snapshot-run-r1', metadata: { snapshot_run: 'r1' }, force: true } });
  });

  it("finds snapshots by name and metadata, checking Cinder's filtering again", async () => {
    const stranger = { ...recorded.snapshots.snapshots[0], id: '99999999-2222-4333-8444-555555555555', metadata: { snapshot_run: 'r2' } };
    handler = answer(200, { snapshots: [...recorded.snapshots.snapshots, stranger] });
    const found = await client().listSnapshots({ name: 'snap-run-1', metadata: { snapshot_run: 'r1' } });
    expect(found.map((s) => s.id)).toEqual([SNAPSHOT]);
    const url = new URL(seen[0]?.url ?? '', 'http://x');
    expect(url.pathname).toBe(`/v3/${PROJECT}/snapshots/detail`);
    expect(url.searchParams.get('name')).toBe('snap-run-1');
    expect(JSON.parse(url.searchParams.get('metadata') ?? '')).toEqual({ snapshot_run: 'r1' });
  });

  it('reads the snapshot quota from the limits a member sees', async () => {
    handler = answer(200, recorded.limits);
    expect(await client().snapshotQuota()).toEqual({ limit: recorded.limits.limits.absolute.maxTotalSnapshots, inUse: recorded.limits.limits.absolute.totalSnapshotsUsed });
  });

  it('deletes a snapshot, and counts one already gone as deleted', async () => {
    handler = answer(202, '');
    expect(await client().deleteSnapshot(SNAPSHOT)).toBe(true);
    expect(seen[0]).toMatchObject({ method: 'DELETE', url: `/v3/${PROJECT}/snapshots/${SNAPSHOT}` });
    handler = answer(404, recorded.snapshotNotFound);
    expect(await client().deleteSnapshot(SNAPSHOT)).toBe(false);
  });

  it("carries Cinder's status and fault code: not found, over quota, bad request", async () => {
    handler = answer(404, recorded.snapshotNotFound);
    const notFound = await client().showSnapshot(SNAPSHOT).catch((e: unknown) => e);
    expect(notFound).toBeInstanceOf(CinderError);
    expect(notFound).toMatchObject({ status: 404, fault: 'itemNotFound', notFound: true, retryable: false });
    handler = answer(413, recorded.snapshotOverLimit);
    const over = await client().createSnapshot({ volumeId: VOLUME, name: 'n', metadata: {} }).catch((e: unknown) => e);
    expect(over).toMatchObject({ status: 413, fault: 'overLimit', overLimit: true, retryable: false });
    handler = answer(400, recorded.badVolumeForSnapshot);
    const bad = await client().createSnapshot({ volumeId: VOLUME, name: 'n', metadata: {} }).catch((e: unknown) => e);
    expect(bad).toMatchObject({ status: 400, fault: 'badRequest' });
    expect((bad as CinderError).message).toContain(recorded.badVolumeForSnapshot.badRequest.message);
  });

  it('refuses ids that would retarget the request, without sending it', async () => {
    handler = answer(200, recorded.volume);
    await expect(client().showVolume('../../admin/volumes')).rejects.toMatchObject({ status: 400, fault: 'badRequest' });
    await expect(client().deleteSnapshot('x?all_tenants=1')).rejects.toBeInstanceOf(CinderError);
    await expect(new CinderClient({ ...client().conn, projectId: '../other' }).showVolume(VOLUME)).rejects.toBeInstanceOf(CinderError);
    expect(seen).toHaveLength(0);
  });

  it('reports a 5xx, a dead service and a silent one as retryable, with no status for no answer', async () => {
    handler = answer(503, '<html>Service Unavailable</html>');
    await expect(client().showVolume(VOLUME)).rejects.toMatchObject({ status: 503, fault: null, retryable: true });
    handler = () => undefined; // never answers
    const started = Date.now();
    await expect(client({ timeoutMs: 300 }).showVolume(VOLUME)).rejects.toMatchObject({ status: null, retryable: true });
    expect(Date.now() - started).toBeLessThan(1_500);
    const dead = new CinderClient({ baseUrl: 'http://127.0.0.1:1/v3', projectId: PROJECT, token: () => Promise.resolve('t') });
    await expect(dead.showVolume(VOLUME)).rejects.toMatchObject({ status: null, retryable: true });
  });

  it('refuses an answer over its size cap, and one it cannot read', async () => {
    handler = answer(200, { volume: { ...recorded.volume.volume, name: 'x'.repeat(10_000) } });
    await expect(client({ maxResponseBytes: 4_096 }).showVolume(VOLUME)).rejects.toThrow(/cap/);
    handler = answer(200, { volume: { id: VOLUME } });
    await expect(client().showVolume(VOLUME)).rejects.toBeInstanceOf(CinderResponseInvalid);
    handler = answer(200, 'not json');
    await expect(client().showVolume(VOLUME)).rejects.toBeInstanceOf(CinderResponseInvalid);
  });

  it("confirms a domain's volume claim from Cinder's volume and attachment records, and refuses another instance's", async () => {
    const instance = recorded.attachments.attachments[0]?.instance ?? '';
    handler = (req, res) => answer(200, req.url.includes('/attachments') ? recorded.attachments : recorded.volume)(req, res);
    const claim = { volumeId: VOLUME, device: 'vda', root: true };
    await expect(confirmAttachedVolumes(client(), instance, [claim])).resolves.toMatchObject([{ ...claim, sizeGiB: 1 }]);
    await expect(confirmAttachedVolumes(client(), '7c1f6b8f-2d3e-4f40-9bac-1d2e3f4a5b6c', [claim])).rejects.toBeInstanceOf(VolumeNotAttached);
    handler = answer(404, recorded.volumeNotFound);
    await expect(confirmAttachedVolumes(client(), instance, [claim])).rejects.toBeInstanceOf(VolumeNotAttached);
  });
});
