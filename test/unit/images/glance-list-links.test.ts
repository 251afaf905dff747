// GlanceHttpClient.list() against real HTTP servers: it follows Glance's `next` links within its
// own endpoint's image listing, and a hostile `next` (another origin, a protocol-relative link,
// another path) is refused before any request, so the token never leaves; the pages are bounded.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GlanceHttpClient, ImageServiceUnavailable, toGlanceView, type ImageRecord } from '../../../src/images/client';

const TOKEN = 'list-token-0123456789abcdef';

function record(id: string): ImageRecord {
  return {
    id, name: 'snap', status: 'active', container_format: 'bare', disk_format: 'qcow2', visibility: 'private', owner: 'p1',
    size: 5, checksum: 'md5', os_hash_algo: 'sha512', os_hash_value: 'sha', min_disk: 0, min_ram: 0, protected: false,
    tags: [], properties: {}, created_at: '2030-01-01T00:00:00Z', updated_at: '2030-01-01T00:00:00Z',
  };
}
const IDS = ['3b6f8c1e-6f53-4c43-9b5e-2a5f0d3f6d11', '3b6f8c1e-6f53-4c43-9b5e-2a5f0d3f6d12'];

interface Seen {
  url: string;
  token: string | undefined;
}

/** A real HTTP server that records each request and answers with `page(url)`. */
async function serve(page: (url: URL) => { images: unknown[]; next?: string }): Promise<{ url: string; seen: Seen[]; server: Server }> {
  const seen: Seen[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    seen.push({ url: `${url.pathname}${url.search}`, token: req.headers['x-auth-token'] as string | undefined });
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(page(url)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, server };
}

const servers: Server[] = [];
async function started(page: (url: URL) => { images: unknown[]; next?: string }) {
  const s = await serve(page);
  servers.push(s.server);
  return s;
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

it('follows same-endpoint next links page by page, also under a path prefix', async () => {
  const glance = await started((url) =>
    url.searchParams.get('marker') === null ? { images: [toGlanceView(record(IDS[0] ?? ''))], next: `/v2/images?marker=${IDS[0]}&limit=1` } : { images: [toGlanceView(record(IDS[1] ?? ''))] },
  );
  const images = await new GlanceHttpClient(glance.url, TOKEN).list({ owner: 'p1' });
  expect(images.map((i) => i.id)).toEqual(IDS);
  expect(glance.seen.map((s) => s.url)).toEqual(['/v2/images?owner=p1', `/v2/images?marker=${IDS[0]}&limit=1`]);

  glance.seen.length = 0;
  await new GlanceHttpClient(`${glance.url}/image`, TOKEN).list();
  expect(glance.seen.map((s) => s.url)).toEqual(['/image/v2/images', `/image/v2/images?marker=${IDS[0]}&limit=1`]);
});

describe('a hostile next link', () => {
  it.each([
    ['another origin', (evil: string) => `${evil}/v2/images?marker=x`],
    ['a protocol-relative link', (evil: string) => `${evil.replace(/^http:/, '')}/v2/images?marker=x`],
    ['another path on the same origin', () => '/v3/auth/tokens?marker=x'],
    ['a path that climbs out of the listing', () => '/v2/images/../../admin?marker=x'],
  ])('%s is refused and never requested: the token stays home', async (_what, nextOf) => {
    const evil = await started(() => ({ images: [] }));
    const glance = await started(() => ({ images: [toGlanceView(record(IDS[0] ?? ''))], next: nextOf(evil.url) }));
    const listing = new GlanceHttpClient(glance.url, TOKEN).list();
    await expect(listing).rejects.toBeInstanceOf(ImageServiceUnavailable);
    await expect(listing).rejects.toThrow(/next link outside its own image listing/);
    expect(evil.seen).toEqual([]);
    expect(glance.seen.map((s) => s.url)).toEqual(['/v2/images']);
  });

  it('that never ends is followed for a bounded number of pages', async () => {
    const glance = await started((url) => ({ images: [], next: `/v2/images?marker=${Number(url.searchParams.get('marker') ?? 0) + 1}` }));
    await expect(new GlanceHttpClient(glance.url, TOKEN).list()).rejects.toThrow(/more than 1000 pages/);
    expect(glance.seen.length).toBe(1000);
  });
});
