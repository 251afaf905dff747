// The compute API on Fastify: public documents (version root, OpenAPI, metrics), then every
// /v2.1/servers… and /ops/… route authenticated before its body is read, microversions negotiated,
// request and query validated by the routes' zod schemas, and Nova's fault bodies for every refusal.
import { randomUUID } from 'node:crypto';
import swagger from '@fastify/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import type { Registry } from 'prom-client';
import { isCloudAdmin, isSnapshotService, type Identity, type IdentitySource } from '../auth';
import { createHttpApp, methodsByUrl, otherMethods } from '../http';
import { ApiError, badRequest, faultBody, forbidden, INTERNAL_ERROR_MESSAGE, notFound, serviceUnavailable, unauthorized, validationMessage } from './api-errors';
import { BACKUP_SCHEDULE_ROUTES } from './backup-schedule-routes';
import { BACKUP_ROUTES } from './backup-routes';
import { COMPUTE_ROUTES } from './compute-routes';
import { INSTANCE_ACTION_ROUTES } from './instance-action-routes';
import { novaRefusal, parseBodiesAsJson, refuseNonJsonBody } from './http-io';
import { formatVersion, MAX_VERSION, MIN_VERSION, negotiateVersion, versionHeaders, type Microversion } from './microversion';
import { OPENAPI_PATH, swaggerOptions } from './openapi';
import { OPS_ROUTES } from './ops-routes';
import type { ApiAnswer, ApiRoute, ApiServices } from './request-context';

export interface ApiAppOptions {
  services: ApiServices;
  auth: IdentitySource;
  registry: Registry;
  maxBodyBytes: number;
  /** Called once per answered request, for the request metric. */
  observe: (route: string, method: string, status: number) => void;
}

interface Caller {
  identity: Identity;
  token: string;
  version: Microversion;
}

const ROUTES = [...COMPUTE_ROUTES, ...BACKUP_ROUTES, ...INSTANCE_ACTION_ROUTES, ...BACKUP_SCHEDULE_ROUTES, ...OPS_ROUTES];
const pathNotFound = () => notFound('The resource could not be found.');

function v21(baseUrl: string) {
  return {
    id: 'v2.1',
    status: 'CURRENT',
    version: formatVersion(MAX_VERSION),
    min_version: formatVersion(MIN_VERSION),
    updated: '2013-07-23T11:33:21Z',
    links: [{ rel: 'self', href: `${baseUrl}/v2.1/` }],
  };
}

/** GET /: every version (Nova's list_versions). */
function versionsDocument(baseUrl: string): unknown {
  return { versions: [v21(baseUrl)] };
}

/** GET /v2.1: the one version, with Nova's describedby link and media type. */
function versionDocument(baseUrl: string): unknown {
  const version = v21(baseUrl);
  return {
    version: {
      ...version,
      links: [...version.links, { rel: 'describedby', type: 'text/html', href: 'http://docs.openstack.org/' }],
      'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.compute+json;version=2.1' }],
    },
  };
}

export async function createApiApp(options: ApiAppOptions) {
  const { services } = options;
  const app = createHttpApp({ bodyLimit: options.maxBodyBytes });
  const callers = new WeakMap<FastifyRequest, Caller>();
  parseBodiesAsJson(app);
  await app.register(swagger, swaggerOptions());

  const admitAnyCaller = admit({ adminOnly: false, versioned: false });
  app.addHook('onRequest', async (request, reply) => {
    const requestId = `req-${randomUUID()}`;
    reply.header('x-compute-request-id', requestId).header('x-openstack-request-id', requestId);
    // Unknown paths answer 401 before 404, as every API path does, and neither reads a body.
    if (request.is404) {
      await admitAnyCaller(request, reply);
      throw pathNotFound();
    }
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    options.observe(route, request.method, reply.statusCode);
    const ms = Math.round(reply.elapsedTime * 10) / 10;
    services.log.info({ request_id: reply.getHeader('x-compute-request-id'), method: request.method, route, status: reply.statusCode, ms }, 'request');
  });
  app.setErrorHandler(async (err, request, reply) => {
    const known = err instanceof ApiError ? err : novaRefusal(err);
    if (known === undefined) services.log.error({ err, request_id: reply.getHeader('x-compute-request-id'), path: request.url }, 'request failed');
    const status = known?.status ?? 500;
    // Unread body bytes would be taken for the next request on this connection.
    if (!request.raw.complete) reply.header('Connection', 'close');
    return reply
      .code(status)
      .headers(known?.headers ?? {})
      .type('application/json')
      .send(JSON.stringify(faultBody(status, known?.message ?? INTERNAL_ERROR_MESSAGE)));
  });

  async function identityFor(token: string): Promise<Identity | null> {
    try {
      return await options.auth.authenticate(token);
    } catch (err) {
      services.log.error({ err }, 'the identity service could not validate a token');
      // keystonemiddleware's answer when Keystone cannot be asked: 503, never a guess either way.
      throw serviceUnavailable('The identity service is unavailable: the token could not be validated.');
    }
  }

  /** X-Auth-Token, the admin rule and the microversion, all before a body is read. */
  function admit(route: Pick<ApiRoute, 'adminOnly' | 'versioned'>) {
    return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
      const token = request.headers['x-auth-token'];
      const identity = typeof token === 'string' ? await identityFor(token) : null;
      if (identity === null || typeof token !== 'string') throw unauthorized();
      // The workers' identity writes snapshot images; it does nothing on the compute API.
      if (isSnapshotService(identity)) throw forbidden('Policy does not allow this operation: the snapshot service identity has no compute API access.');
      if (route.adminOnly && !isCloudAdmin(identity)) throw forbidden('Policy does not allow this operation: admin role required.');
      const version = route.versioned ? negotiateVersion(request.headers) : MIN_VERSION;
      if (route.versioned) reply.headers(versionHeaders(version));
      callers.set(request, { identity, token, version });
    };
  }

  function answer(reply: FastifyReply, result: ApiAnswer) {
    reply.code(result.status).headers(result.headers ?? {});
    return result.body === undefined ? reply.send() : reply.type('application/json').send(JSON.stringify(result.body));
  }

  for (const route of ROUTES) {
    app.route({
      method: route.method,
      url: route.url,
      schema: { ...route.schema, ...(route.versioned ? {} : { tags: ['ops'] }) },
      attachValidation: true,
      onRequest: admit(route),
      ...(route.method === 'POST' || route.method === 'PUT' ? { preParsing: refuseNonJsonBody } : {}),
      handler: async (request, reply) => {
        const caller = callers.get(request);
        if (caller === undefined) throw unauthorized();
        route.precheck?.(request.body);
        const invalid = request.validationError;
        if (invalid !== undefined) {
          const issue = hasZodFastifySchemaValidationErrors(invalid) ? invalid.validation[0]?.params.issue : undefined;
          const input = invalid.validationContext === 'querystring' ? request.query : request.body;
          throw badRequest(validationMessage(issue, input));
        }
        const result = await route.handle({
          ...caller,
          requestId: String(reply.getHeader('x-compute-request-id')),
          params: request.params as Record<string, string>,
          body: request.body,
          query: request.query,
          services,
          log: services.log.child({ request_id: reply.getHeader('x-compute-request-id'), project_id: caller.identity.projectId }),
        });
        return answer(reply, result);
      },
    });
  }

  // Any other method on a known path: Nova's 405, after authentication as for every API path.
  for (const [url, taken] of methodsByUrl(ROUTES)) {
    app.route({
      method: otherMethods(taken),
      url,
      schema: { hide: true },
      onRequest: admitAnyCaller,
      handler: async (request) => {
        throw new ApiError(405, `The method ${request.method.slice(0, 16)} is not allowed for this resource.`);
      },
    });
  }

  const publicRoute = { security: [] as { token: string[] }[] };
  app.get('/', { schema: { summary: 'Compute API versions', ...publicRoute } }, async (_request, reply) => answer(reply, { status: 200, body: versionsDocument(services.baseUrl) }));
  app.get('/v2.1', { schema: { summary: 'The v2.1 version', ...publicRoute } }, async (_request, reply) => answer(reply, { status: 200, body: versionDocument(services.baseUrl) }));
  app.get(OPENAPI_PATH, { schema: { hide: true } }, async (_request, reply) =>
    answer(reply, { status: 200, body: { ...app.swagger(), servers: [{ url: services.baseUrl }] } }),
  );
  app.get('/metrics', { schema: { summary: 'Prometheus metrics', ...publicRoute } }, async (_request, reply) =>
    reply.type(options.registry.contentType).send(await options.registry.metrics()),
  );
  app.setNotFoundHandler(async () => {
    throw pathNotFound();
  });
  return app;
}
