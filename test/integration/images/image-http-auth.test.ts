// Project isolation through the X-Auth-Token hook: a token sees only its project's images (others
// answer 404), admin sees all, missing or unknown tokens get 401.
import { Readable } from 'node:stream';
import { GlanceHttpClient, ImageNotFound, ImageRequestRejected } from '../../../src/images/client';
import type { AuthIdentity } from '../../../src/auth';
import { raw, startFixture, type ImageServerFixture } from './image-server-fixture';

const TOKENS: Record<string, AuthIdentity> = {
  'token-a': { kind: 'project', projectId: 'project-a', projectAdmin: false },
  'token-b': { kind: 'project', projectId: 'project-b', projectAdmin: false },
  'token-admin': { kind: 'cloud-admin', projectId: 'project-ops' },
};

let fx: ImageServerFixture;
let a: GlanceHttpClient;
let b: GlanceHttpClient;
let admin: GlanceHttpClient;

beforeEach(async () => {
  fx = await startFixture({ authenticate: async (token) => TOKENS[token] ?? null });
  a = new GlanceHttpClient(fx.server.url, 'token-a');
  b = new GlanceHttpClient(fx.server.url, 'token-b');
  admin = new GlanceHttpClient(fx.server.url, 'token-admin');
});
afterEach(async () => fx.cleanup());

it('owns images by the token project and hides them from other projects', async () => {
  const image = await a.create({ name: 'a-snap' });
  expect(image.owner).toBe('project-a');
  await a.upload(image.id, Readable.from([Buffer.from('a data')]));

  await expect(b.get(image.id)).rejects.toBeInstanceOf(ImageNotFound);
  await expect(b.download(image.id)).rejects.toBeInstanceOf(ImageNotFound);
  await expect(b.delete(image.id)).rejects.toBeInstanceOf(ImageNotFound);
  expect(await b.list()).toEqual([]);

  const bImage = await b.create({ name: 'b-snap' });
  expect((await a.list()).map((i) => i.id)).toEqual([image.id]);
  expect(new Set((await admin.list()).map((i) => i.id))).toEqual(new Set([image.id, bImage.id]));
  expect((await admin.list({ owner: 'project-b' })).map((i) => i.id)).toEqual([bImage.id]);
  expect((await a.get(image.id)).status).toBe('active');
});

it('lets admin act on any project and set an owner; members may not', async () => {
  const forB = await admin.create({ name: 'made-for-b', owner: 'project-b' });
  expect(forB.owner).toBe('project-b');
  expect((await b.get(forB.id)).id).toBe(forB.id);
  const err = await a.create({ name: 'x', owner: 'project-b' }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ImageRequestRejected);
  expect((err as ImageRequestRejected).status).toBe(403);
  const pub = await a.create({ name: 'x', visibility: 'public' }).catch((e: unknown) => e);
  expect((pub as ImageRequestRejected).status).toBe(403);
  const own = await a.create({ name: 'a-own' });
  await admin.delete(own.id);
  await expect(a.get(own.id)).rejects.toBeInstanceOf(ImageNotFound);
});

it('answers 401 without a token or with an unknown one, changing nothing', async () => {
  const none = await raw(fx.server.url, 'POST', '/v2/images', { body: '{"name":"x"}', headers: { 'Content-Type': 'application/json' } });
  expect(none.status).toBe(401);
  const bad = await raw(fx.server.url, 'GET', '/v2/images', { headers: { 'X-Auth-Token': 'forged' } });
  expect(bad.status).toBe(401);
  expect(bad.json).toMatchObject({ error: { code: 401 } });
  const err = await new GlanceHttpClient(fx.server.url, 'forged').list().catch((e: unknown) => e);
  expect((err as ImageRequestRejected).status).toBe(401);
  expect(await admin.list()).toEqual([]);
  expect((await raw(fx.server.url, 'GET', '/healthcheck')).status).toBe(200);
});

it("serves Glance's version document without a token: 300 at /, 200 at /versions, links to this service's v2", async () => {
  for (const [path, status] of [['/', 300], ['/versions', 200]] as const) {
    const doc = await raw(fx.server.url, 'GET', path);
    expect(doc.status).toBe(status);
    expect(doc.headers.get('content-type')).toMatch(/^application\/json/);
    const versions = (doc.json as { versions: { id: string; status: string; links: { rel: string; href: string }[] }[] }).versions;
    expect(versions[0]).toEqual({ id: 'v2.5', status: 'CURRENT', links: [{ rel: 'self', href: `${fx.server.url}/v2/` }] });
    expect(versions.slice(1).every((v) => v.status === 'SUPPORTED' && /^v2\.\d$/.test(v.id))).toBe(true);
  }
});

it('authenticates before anything else: 401 for unknown paths and wrong methods without a token, 404 and 405 with one', async () => {
  expect((await raw(fx.server.url, 'GET', '/v2/nothing-here')).status).toBe(401);
  expect((await raw(fx.server.url, 'PUT', '/v2/images')).status).toBe(401);
  const missing = await raw(fx.server.url, 'POST', '/v2/nothing-here', { body: '{', headers: { 'X-Auth-Token': 'token-a', 'Content-Type': 'application/json' } });
  expect(missing.status).toBe(404);
  expect(missing.json).toMatchObject({ error: { code: 404, title: 'Not Found' } });
  const wrong = await raw(fx.server.url, 'PUT', '/v2/images', { headers: { 'X-Auth-Token': 'token-a' } });
  expect(wrong.status).toBe(405);
  expect(wrong.json).toMatchObject({ error: { code: 405, message: 'Method not allowed; use one of GET, POST' } });
});
