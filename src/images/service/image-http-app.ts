// The Glance-v2-shaped HTTP front of ImageService on Fastify. Routing, auth and status codes live
// here; image semantics live in ImageService. Routes sit in scopes by the body they take (JSON,
// JSON patch, streamed image data, none), so each scope's parser is the only one its routes meet.
import { ZodError, z, type ZodIssue } from 'zod';
import type { FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import type { Authenticator } from '../../auth';
import { issueText } from '../../config/validation';
import { createHttpApp, methodsByUrl, otherMethods, type HttpApp } from '../../http';
import { toGlanceView } from '../client/glance-image-view';
import { UNAUTHENTICATED_ADMIN, contextFor, type RequestContext } from './image-auth';
import { ImageRequestRejected, ImageServiceUnavailable, badRequest, unauthorized } from '../client/image-errors';
import { IMAGE_STATUSES, JSON_PATCH_MEDIA_TYPE, imagePatchFrom } from '../client/image-record';
import type { ImageService } from './image-service';
import { imageVersions, VERSION_URLS } from './image-versions';
import { INTERNAL_ERROR, JSON_TYPE, declaredLength, glanceErrorBody, imageErrorOf, jsonBody, mediaType, parseJsonBodies, requireContentType, requireJson, streamBodies } from './http-io';
import { CHUNK_BYTES } from '../store/image-index';
import { layoutBodyLimit } from '../store/layout-bounds';
import { STORE_CAPABILITIES_URL, type StoreCapabilities } from '../client/logical-layout';
import { storeVerifyRoutes } from './store-verify-http';
import { storeRepairRoutes } from './store-repair-http';
import { STORE_VERIFY_URL } from '../client/store-verify-wire';
import { DEFAULT_UPLOAD_LIMITS, uploadAdmission, type UploadLimits } from './upload-limits';
import { RESUMABLE_COMMIT_URL, RESUMABLE_URL, resumableBodilessRoutes, resumableJsonRoutes, resumableStreamRoutes } from './resumable-http';
import { CHUNK_URL, KNOWN_CHUNKS_URL, chunkJsonRoutes, chunkStreamRoutes } from './chunk-http';
import { errorMessage } from '../../contract';

export interface ImageHttpAppOptions {
  service: ImageService;
  authenticate?: Authenticator;
  /** Largest accepted JSON body; Glance metadata is small, so anything bigger is refused with 413. */
  maxJsonBytes?: number;
  onError?: (err: unknown, request: FastifyRequest) => void;
  /** Drop a connection after this long without traffic (default 5 minutes). */
  idleTimeoutMs?: number;
  /** Longest a client may take to send a whole request, body included (default none). */
  requestTimeoutMs?: number;
  /** How long an idle keep-alive connection stays open (default 72 s). */
  keepAliveTimeoutMs?: number;
  /** Concurrent data requests and the body idle timeout (defaults DEFAULT_UPLOAD_LIMITS). */
  uploadLimits?: UploadLimits;
  /** This service's own URL, for the links of its version document (known once it listens). */
  baseUrl: () => string;
}

const ListQuerySchema = z.object({
  owner: z.string().min(1).optional(),
  status: z.enum(IMAGE_STATUSES).optional(),
  name: z.string().optional(),
  marker: z.string().uuid().optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(25),
});

const IMAGES_URL = '/v2/images';
const IMAGE_URL = '/v2/images/:image_id';
const IMAGE_FILE_URL = '/v2/images/:image_id/file';
/** Routes every path has, with the methods each serves: the rest answer 405. */
const SERVED = [
  ...[['GET', IMAGES_URL], ['POST', IMAGES_URL], ['GET', IMAGE_URL], ['DELETE', IMAGE_URL], ['PATCH', IMAGE_URL], ['GET', IMAGE_FILE_URL], ['PUT', IMAGE_FILE_URL], ['GET', STORE_CAPABILITIES_URL], ['GET', STORE_VERIFY_URL], ['POST', STORE_VERIFY_URL]],
  ...[['POST', RESUMABLE_URL], ['HEAD', RESUMABLE_URL], ['GET', RESUMABLE_URL], ['PATCH', RESUMABLE_URL], ['DELETE', RESUMABLE_URL], ['POST', RESUMABLE_COMMIT_URL], ['POST', KNOWN_CHUNKS_URL], ['PUT', CHUNK_URL]],
].map(([method, url]) => ({ method: method ?? '', url: url ?? '' }));
const PUBLIC_URLS = new Set(['/healthcheck', ...VERSION_URLS]);

type ImageRequest = FastifyRequest<{ Params: { image_id: string } }>;

const requireOctetStream = requireContentType(
  (request) => /^application\/octet-stream\b/i.test(request.headers['content-type'] ?? ''),
  (request) => `Unsupported Content-Type '${request.headers['content-type'] ?? ''}'; image data must be application/octet-stream`,
);
const requireJsonPatch = requireContentType(
  (request) => mediaType(request) === JSON_PATCH_MEDIA_TYPE,
  (request) => `Unsupported Content-Type ${String(request.headers['content-type'])}; expected ${JSON_PATCH_MEDIA_TYPE}`,
);

export async function createImageHttpApp(options: ImageHttpAppOptions): Promise<HttpApp> {
  const { service } = options;
  const maxJsonBytes = options.maxJsonBytes ?? 64 * 1024;
  const app = createHttpApp({ bodyLimit: maxJsonBytes, idleTimeoutMs: options.idleTimeoutMs, requestTimeoutMs: options.requestTimeoutMs, keepAliveTimeoutMs: options.keepAliveTimeoutMs });
  const callers = new WeakMap<FastifyRequest, RequestContext>();
  const caller = (request: FastifyRequest): RequestContext => callers.get(request) ?? UNAUTHENTICATED_ADMIN;
  const x = { service, caller, openBodyLimit: layoutBodyLimit(service.maxImageBytes) };
  // A stray body on a bodiless route is read (bounded) and ignored, so the connection stays usable.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, _body, done) => done(null, undefined));

  app.addHook('onRequest', async (request) => {
    if (request.routeOptions.url !== undefined && PUBLIC_URLS.has(request.routeOptions.url)) return;
    callers.set(request, await authenticate(options.authenticate, request));
    if (request.is404) throw new ImageRequestRejected(404, `The resource could not be found: ${request.url.split('?')[0]?.slice(0, 200) ?? ''}`);
  });
  app.setErrorHandler(async (err, request, reply) => {
    const known = imageErrorOf(err, request.routeOptions.bodyLimit ?? maxJsonBytes);
    // Client mistakes (4xx) are answered, not reported; only server-side failures are.
    if (known === undefined || known.status >= 500) options.onError?.(err, request);
    const status = known?.status ?? 500;
    if (!request.raw.complete) reply.header('Connection', 'close');
    return reply.code(status).type(JSON_TYPE).send(JSON.stringify(glanceErrorBody(status, known?.message ?? INTERNAL_ERROR)));
  });

  app.get('/healthcheck', async (_request, reply) => reply.type('text/plain').send('OK'));
  for (const url of VERSION_URLS) {
    app.get(url, async (_request, reply) => reply.code(url === '/' ? 300 : 200).type(JSON_TYPE).send(imageVersions(options.baseUrl())));
  }

  app.get(IMAGES_URL, { schema: { querystring: ListQuerySchema }, attachValidation: true }, async (request, reply) => {
    const invalid = request.validationError;
    if (invalid !== undefined) {
      const issues = hasZodFastifySchemaValidationErrors(invalid) ? invalid.validation.map((v: { params: { issue: ZodIssue } }) => v.params.issue) : [];
      throw badRequest(`Invalid query: ${issueText(new ZodError(issues))}`);
    }
    const { marker, limit, ...filter } = request.query;
    const page = await service.listing(caller(request), filter, { limit, marker });
    const body: Record<string, unknown> = { images: page.images.map(toGlanceView), first: IMAGES_URL, schema: '/v2/schemas/images' };
    if (page.nextMarker !== undefined) {
      const next = new URLSearchParams(request.url.split('?')[1] ?? '');
      next.set('marker', page.nextMarker);
      body.next = `${IMAGES_URL}?${next.toString()}`;
    }
    return reply.type(JSON_TYPE).send(body);
  });
  app.get<{ Params: { image_id: string } }>(IMAGE_URL, async (request, reply) => reply.type(JSON_TYPE).send(toGlanceView(await service.lookup(caller(request), request.params.image_id))));
  app.delete<{ Params: { image_id: string } }>(IMAGE_URL, async (request, reply) => {
    await service.delete(caller(request), request.params.image_id);
    return reply.code(204).send();
  });
  app.get<{ Params: { image_id: string } }>(IMAGE_FILE_URL, async (request, reply) => {
    const { record, data } = await service.openData(caller(request), request.params.image_id);
    if (data === null) return reply.code(204).send();
    reply.type('application/octet-stream');
    if (record.size !== null) reply.header('Content-Length', record.size);
    if (record.checksum !== null) reply.header('Content-MD5', record.checksum);
    // Fastify destroys the file stream when the client goes away.
    return reply.send(data);
  });
  // The composing store's capability: logical uploads (incrementals over a parent) are composed here.
  app.get(STORE_CAPABILITIES_URL, async (_request, reply) => reply.type(JSON_TYPE).send(storeCapabilities()));
  resumableBodilessRoutes(app, x);
  storeVerifyRoutes(app, x);
  storeRepairRoutes(app, x);

  await app.register(async (scope: HttpApp) => {
    parseJsonBodies(scope, maxJsonBytes);
    scope.post(IMAGES_URL, { preParsing: requireJson }, async (request, reply) => {
      const record = await service.create(caller(request), jsonBody(request));
      return reply.code(201).header('Location', `${IMAGES_URL}/${record.id}`).type(JSON_TYPE).send(toGlanceView(record));
    });
    resumableJsonRoutes(scope, x);
    chunkJsonRoutes(scope, x);
  });
  await app.register(async (scope: HttpApp) => {
    parseJsonBodies(scope, maxJsonBytes);
    /** Glance's JSON-patch update, limited to the formats of an image without data, `protected` and adding custom properties. */
    scope.patch<{ Params: { image_id: string } }>(IMAGE_URL, { preParsing: requireJsonPatch }, async (request: ImageRequest, reply) => {
      const patch = imagePatchFrom(jsonBody(request));
      if (typeof patch === 'string') throw badRequest(`Only replacing /disk_format, /container_format and /protected, and adding custom properties, is supported: ${patch}`);
      return reply.type(JSON_TYPE).send(toGlanceView(await service.update(caller(request), request.params.image_id, patch)));
    });
  });
  await app.register(async (scope: HttpApp) => {
    streamBodies(scope);
    scope.addHook('preHandler', uploadAdmission(options.uploadLimits ?? DEFAULT_UPLOAD_LIMITS));
    scope.put<{ Params: { image_id: string } }>(IMAGE_FILE_URL, { preParsing: requireOctetStream }, async (request, reply) => {
      await service.upload(caller(request), request.params.image_id, request.raw, declaredLength(request));
      return reply.code(204).send();
    });
    resumableStreamRoutes(scope, x);
    chunkStreamRoutes(scope, x);
  });

  for (const [url, taken] of methodsByUrl(SERVED)) {
    const allow = taken.join(', ');
    app.route({
      method: otherMethods(taken),
      url,
      onRequest: async () => {
        throw new ImageRequestRejected(405, `Method not allowed; use one of ${allow}`);
      },
      handler: async () => undefined,
    });
  }
  return app;
}

async function authenticate(authenticator: Authenticator | undefined, request: FastifyRequest): Promise<RequestContext> {
  if (authenticator === undefined) return UNAUTHENTICATED_ADMIN;
  const token = request.headers['x-auth-token'];
  if (typeof token !== 'string' || token.length === 0) throw unauthorized('This server could not verify that you are authorized to access the document you requested.');
  let identity: Awaited<ReturnType<Authenticator>>;
  try {
    identity = await authenticator(token);
  } catch (err) {
    throw new ImageServiceUnavailable(`The identity service could not validate the token: ${errorMessage(err)}`);
  }
  if (identity === null) throw unauthorized('Authentication required: the token is invalid or expired.');
  return contextFor(identity);
}


function storeCapabilities(): StoreCapabilities {
  return { compose: true, chunk_bytes: CHUNK_BYTES, logical_upload_versions: [1, 2] };
}
