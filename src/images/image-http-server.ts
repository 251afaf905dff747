// The Glance-v2-shaped HTTP front of ImageService on plain node:http. Routing, auth and status
// codes live here; image semantics live in ImageService. The resumable upload extension's routes
// are in resumable-http.ts.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { toGlanceView } from './glance-image-view';
import { UNAUTHENTICATED_ADMIN, contextFor, type RequestContext } from './image-auth';
import type { Authenticator } from '../auth';
import { ImageError, ImageRequestRejected, badRequest, unauthorized } from './image-errors';
import { IMAGE_STATUSES, JSON_PATCH_MEDIA_TYPE, formatsFromPatch } from './image-record';
import { BodyTooLarge, readBoundedBody, readJsonBody } from '../net/http-body';
import type { ImageService } from './image-service';
import { GLANCE_BODY_REFUSALS, sendError, sendJson } from './http-io';
import { issueText } from '../config/validation';
import { routeResumable } from './resumable-http';

export interface ImageHttpServerOptions {
  service: ImageService;
  authenticate?: Authenticator;
  /** Largest accepted JSON body; Glance metadata is small, so anything bigger is refused with 413. */
  maxJsonBytes?: number;
  onError?: (err: unknown, req: IncomingMessage) => void;
  /** Drop a connection after this long without traffic (default 5 minutes). */
  idleTimeoutMs?: number;
}

const ListQuerySchema = z.object({
  owner: z.string().min(1).optional(),
  status: z.enum(IMAGE_STATUSES).optional(),
  name: z.string().optional(),
  marker: z.string().uuid().optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(25),
});

const IMAGE_PATH = /^\/v2\/images\/([^/]+)$/;
const IMAGE_FILE_PATH = /^\/v2\/images\/([^/]+)\/file$/;

export class ImageHttpServer {
  private readonly server: Server;
  private readonly maxJsonBytes: number;

  constructor(private readonly options: ImageHttpServerOptions) {
    this.maxJsonBytes = options.maxJsonBytes ?? 64 * 1024;
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        // Client mistakes (4xx) are answered, not reported; only server-side failures are.
        if (!(err instanceof ImageError) || err.status >= 500) options.onError?.(err, req);
        sendError(req, res, err);
      });
    });
    // Node's default 5-minute whole-request limit would cut off large image uploads; instead a
    // socket is dropped only after this long without any bytes moving.
    this.server.requestTimeout = 0;
    this.server.timeout = options.idleTimeoutMs ?? 5 * 60_000;
  }

  /** Starts listening; port 0 picks a free port. Resolves with the bound address. */
  async listen(port: number, host = '127.0.0.1'): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    return this.server.address() as AddressInfo;
  }

  /** Stops accepting connections, lets in-flight requests finish, then closes idle sockets. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve, reject) => this.server.close((err) => (err ? reject(err) : resolve())));
    // Keep-alive sockets turn idle only when their current request ends; sweep until all are gone
    // so shutdown does not wait for the clients' keep-alive timeouts.
    const sweep = setInterval(() => this.server.closeIdleConnections(), 50);
    this.server.closeIdleConnections();
    try {
      await closed;
    } finally {
      clearInterval(sweep);
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://image-service');
    const method = req.method ?? 'GET';
    if (url.pathname === '/healthcheck' && method === 'GET') {
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end('OK');
      return;
    }
    const ctx = await this.authenticate(req);
    if (url.pathname === '/v2/images') {
      if (method === 'POST') return this.create(ctx, req, res);
      if (method === 'GET') return this.list(ctx, url, res);
      throw methodNotAllowed('GET, POST');
    }
    if (await routeResumable(url.pathname, method, { service: this.options.service, ctx, req, res, maxJsonBytes: this.maxJsonBytes })) return;
    const file = IMAGE_FILE_PATH.exec(url.pathname);
    if (file?.[1] !== undefined) {
      const id = decodeURIComponent(file[1]);
      if (method === 'PUT') return this.upload(ctx, id, req, res);
      if (method === 'GET') return this.download(ctx, id, res);
      throw methodNotAllowed('GET, PUT');
    }
    const image = IMAGE_PATH.exec(url.pathname);
    if (image?.[1] !== undefined) {
      const id = decodeURIComponent(image[1]);
      if (method === 'GET') return sendJson(res, 200, toGlanceView(this.options.service.get(ctx, id)));
      if (method === 'DELETE') {
        await this.options.service.delete(ctx, id);
        res.writeHead(204).end();
        return;
      }
      if (method === 'PATCH') return this.patch(ctx, id, req, res);
      throw methodNotAllowed('GET, DELETE, PATCH');
    }
    throw new ImageRequestRejected(404, `The resource could not be found: ${url.pathname}`);
  }

  private async authenticate(req: IncomingMessage): Promise<RequestContext> {
    const authenticate = this.options.authenticate;
    if (authenticate === undefined) return UNAUTHENTICATED_ADMIN;
    const token = req.headers['x-auth-token'];
    if (typeof token !== 'string' || token.length === 0) throw unauthorized('This server could not verify that you are authorized to access the document you requested.');
    const identity = await authenticate(token);
    if (identity === null) throw unauthorized('Authentication required: the token is invalid or expired.');
    return contextFor(identity);
  }

  /** Glance's JSON-patch update, limited to replacing the formats of an image without data. */
  private async patch(ctx: RequestContext, id: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    if (type !== JSON_PATCH_MEDIA_TYPE) throw new ImageRequestRejected(415, `Unsupported Content-Type ${String(req.headers['content-type'])}; expected ${JSON_PATCH_MEDIA_TYPE}`);
    let text: string;
    try {
      text = (await readBoundedBody(req, this.maxJsonBytes)).toString('utf8');
    } catch (err) {
      if (err instanceof BodyTooLarge) throw new ImageRequestRejected(413, err.message);
      throw err;
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw badRequest('Request body is not valid JSON');
    }
    const formats = formatsFromPatch(body);
    if (typeof formats === 'string') throw badRequest(`Only replacing /disk_format and /container_format is supported: ${formats}`);
    sendJson(res, 200, toGlanceView(await this.options.service.setFormats(ctx, id, formats)));
  }

  private async create(ctx: RequestContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJsonBody(req, this.maxJsonBytes, GLANCE_BODY_REFUSALS);
    const record = await this.options.service.create(ctx, body);
    sendJson(res, 201, toGlanceView(record), { Location: `/v2/images/${record.id}` });
  }

  private list(ctx: RequestContext, url: URL, res: ServerResponse): void {
    const parsed = ListQuerySchema.safeParse(Object.fromEntries(url.searchParams));
    if (!parsed.success) throw badRequest(`Invalid query: ${issueText(parsed.error)}`);
    const { marker, limit, ...filter } = parsed.data;
    const page = this.options.service.list(ctx, filter, { limit, marker });
    const body: Record<string, unknown> = { images: page.images.map(toGlanceView), first: '/v2/images', schema: '/v2/schemas/images' };
    if (page.nextMarker !== undefined) {
      const next = new URLSearchParams(url.searchParams);
      next.set('marker', page.nextMarker);
      body.next = `/v2/images?${next.toString()}`;
    }
    sendJson(res, 200, body);
  }

  private async upload(ctx: RequestContext, id: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const type = req.headers['content-type'] ?? '';
    if (!/^application\/octet-stream\b/i.test(type)) {
      throw new ImageRequestRejected(415, `Unsupported Content-Type '${type}'; image data must be application/octet-stream`);
    }
    const lengthHeader = req.headers['content-length'];
    const declared = lengthHeader === undefined ? undefined : Number(lengthHeader);
    await this.options.service.upload(ctx, id, req, Number.isFinite(declared) ? declared : undefined);
    res.writeHead(204).end();
  }

  private async download(ctx: RequestContext, id: string, res: ServerResponse): Promise<void> {
    const { record, data } = this.options.service.openData(ctx, id);
    if (data === null) {
      res.writeHead(204).end();
      return;
    }
    const headers: Record<string, string | number> = { 'Content-Type': 'application/octet-stream' };
    if (record.size !== null) headers['Content-Length'] = record.size;
    if (record.checksum !== null) headers['Content-MD5'] = record.checksum;
    res.writeHead(200, headers);
    // pipeline destroys both ends on failure, so a client disconnect also closes the file.
    await pipeline(data, res);
  }
}

function methodNotAllowed(allow: string): ImageRequestRejected {
  return new ImageRequestRejected(405, `Method not allowed; use one of ${allow}`);
}
