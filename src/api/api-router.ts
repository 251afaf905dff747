// Request dispatch: public endpoints (version root, OpenAPI, metrics), then X-Auth-Token, then the
// microversioned compute routes and the admin-only ops routes. Each route is a method + path pattern.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import type { TokenAuthenticator } from '../auth';
import { serveMetrics } from '../observability';
import { ApiError, forbidden, notFound, unauthorized } from './api-errors';
import { listServers, listServersDetail, serverAction, showServer, snapshotProgress } from './compute-routes';
import { sendFault, sendJson } from './http-io';
import { negotiateVersion, versionHeaders, MIN_VERSION, MAX_VERSION, formatVersion } from './microversion';
import { listKnownHosts, listSnapshots, retrySnapshot, showSnapshot } from './ops-routes';
import type { ApiServices, RequestContext } from './request-context';

type Handler = (ctx: RequestContext, ...params: string[]) => Promise<void>;

interface Route {
  method: string;
  pattern: RegExp;
  handler: Handler;
  adminOnly?: boolean;
  /** Compute routes negotiate a microversion; ops routes do not. */
  versioned: boolean;
}

const SEGMENT = '([^/]+)';
const ROUTES: Route[] = [
  { method: 'GET', pattern: /^\/v2\.1\/servers\/?$/, handler: listServers, versioned: true },
  { method: 'GET', pattern: /^\/v2\.1\/servers\/detail\/?$/, handler: listServersDetail, versioned: true },
  { method: 'GET', pattern: new RegExp(`^/v2\\.1/servers/${SEGMENT}/?$`), handler: showServer, versioned: true },
  { method: 'POST', pattern: new RegExp(`^/v2\\.1/servers/${SEGMENT}/action/?$`), handler: serverAction, versioned: true },
  { method: 'GET', pattern: new RegExp(`^/v2\\.1/servers/${SEGMENT}/snapshot-progress/?$`), handler: snapshotProgress, versioned: true },
  { method: 'GET', pattern: /^\/ops\/snapshots\/?$/, handler: listSnapshots, adminOnly: true, versioned: false },
  { method: 'GET', pattern: new RegExp(`^/ops/snapshots/${SEGMENT}/?$`), handler: showSnapshot, adminOnly: true, versioned: false },
  { method: 'POST', pattern: new RegExp(`^/ops/snapshots/${SEGMENT}/retry/?$`), handler: retrySnapshot, adminOnly: true, versioned: false },
  { method: 'GET', pattern: /^\/ops\/hosts\/?$/, handler: listKnownHosts, adminOnly: true, versioned: false },
];

export interface RouterOptions {
  services: ApiServices;
  auth: TokenAuthenticator;
  registry: Registry;
  openapi: () => unknown;
  /** Called once per answered request, for the request metric. */
  observe: (route: string, method: string, status: number) => void;
}

function decodeParam(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw notFound('The resource could not be found.');
  }
}

function versionDocument(baseUrl: string): unknown {
  return {
    versions: [
      { id: 'v2.1', status: 'CURRENT', version: formatVersion(MAX_VERSION), min_version: formatVersion(MIN_VERSION), links: [{ rel: 'self', href: `${baseUrl}/v2.1/` }] },
    ],
  };
}

export function createRouter(options: RouterOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { services } = options;
  return (req, res) => {
    const requestId = `req-${randomUUID()}`;
    const base: Record<string, string> = { 'x-compute-request-id': requestId, 'x-openstack-request-id': requestId };
    let routeName = 'unmatched';
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      options.observe(routeName, req.method ?? 'GET', res.statusCode);
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      services.log.info({ request_id: requestId, method: req.method, route: routeName, status: res.statusCode, ms: Math.round(ms * 10) / 10 }, 'request');
    });
    dispatch(req, res, base, (name) => (routeName = name)).catch((err: unknown) => {
      if (!(err instanceof ApiError)) services.log.error({ err, request_id: requestId, path: req.url }, 'request failed');
      sendFault(req, res, err, base);
    });
  };

  async function dispatch(req: IncomingMessage, res: ServerResponse, headers: Record<string, string>, named: (name: string) => void): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://compute-api');
    } catch {
      throw notFound('The resource could not be found.');
    }
    const method = req.method ?? 'GET';
    const path = url.pathname;
    if (method === 'GET' && (path === '/' || path === '/v2.1' || path === '/v2.1/')) {
      named('versions');
      return sendJson(res, 200, versionDocument(services.baseUrl), headers);
    }
    if (method === 'GET' && path === '/openapi.json') {
      named('openapi');
      return sendJson(res, 200, options.openapi(), headers);
    }
    if (method === 'GET' && path === '/metrics') {
      named('metrics');
      return serveMetrics(options.registry, req, res);
    }

    const rawToken = req.headers['x-auth-token'];
    const token = typeof rawToken === 'string' ? rawToken : undefined;
    const identity = options.auth.authenticate(token);
    if (identity === null || token === undefined) throw unauthorized();

    let pathMatched = false;
    for (const route of ROUTES) {
      const m = route.pattern.exec(path);
      if (m === null) continue;
      pathMatched = true;
      if (route.method !== method) continue;
      named(`${route.method} ${route.pattern.source}`);
      if (route.adminOnly === true && !identity.isAdmin) throw forbidden('Policy does not allow this operation: admin role required.');
      const version = route.versioned ? negotiateVersion(req.headers) : MIN_VERSION;
      const ctx: RequestContext = {
        req,
        res,
        url,
        identity,
        token,
        version,
        headers: route.versioned ? { ...headers, ...versionHeaders(version) } : headers,
        services,
        log: services.log.child({ request_id: headers['x-compute-request-id'], project_id: identity.projectId }),
      };
      return route.handler(ctx, ...m.slice(1).map(decodeParam));
    }
    if (pathMatched) throw new ApiError(405, `The method ${method.slice(0, 16)} is not allowed for this resource.`);
    throw notFound('The resource could not be found.');
  }
}
