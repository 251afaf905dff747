// The Fastify settings both HTTP services share (compute API, image service): zod schemas through
// the type provider, no Fastify logger (each service logs its own request line with pino), no
// whole-request deadline unless the service sets one (image uploads run for minutes; an idle socket
// is dropped instead), and
// the refusals Fastify makes before a handler runs, sorted so each service words them its own way.
import Fastify, { type FastifyError, type FastifyInstance, type HTTPMethods } from 'fastify';
import type { AddressInfo } from 'node:net';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';

export interface HttpAppOptions {
  /** Largest body Fastify's own parsers buffer; streamed bodies (image data) are not bound by it. */
  bodyLimit: number;
  /** Drop a connection after this long without traffic. Default 5 minutes. */
  idleTimeoutMs?: number;
  /** Longest a client may take to send a whole request, body included; 0 (the default) for none. */
  requestTimeoutMs?: number;
  /** How long an idle keep-alive connection stays open between requests. Default Fastify's 72 s. */
  keepAliveTimeoutMs?: number;
}

export function createHttpApp(options: HttpAppOptions) {
  const app = Fastify({
    logger: false,
    bodyLimit: options.bodyLimit,
    requestTimeout: options.requestTimeoutMs ?? 0,
    connectionTimeout: options.idleTimeoutMs ?? 5 * 60_000,
    keepAliveTimeout: options.keepAliveTimeoutMs ?? 72_000,
    // Keep-alive sockets would hold close() until the clients' own timeouts.
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    // Trailing slashes are accepted as Nova and Glance accept them.
    routerOptions: { ignoreTrailingSlash: true },
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  return app;
}

/** Listens; port 0 picks a free port. Resolves with the bound address and its base URL. */
export async function listenHttpApp(app: FastifyInstance, port: number, host: string): Promise<{ address: AddressInfo; url: string }> {
  await app.listen({ port, host });
  const address = app.server.address() as AddressInfo;
  const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  return { address, url };
}

/** What Fastify refused before any handler ran, in words a service maps onto its own faults. */
export type FrameworkRefusal = 'unsupported-type' | 'too-large' | 'malformed' | 'invalid' | 'not-found';

export function frameworkRefusal(err: unknown): FrameworkRefusal | undefined {
  const code = (err as Partial<FastifyError> | null)?.code;
  if ((err as { validation?: unknown } | null)?.validation !== undefined) return 'invalid';
  switch (code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'unsupported-type';
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'too-large';
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return 'malformed';
    case 'FST_ERR_NOT_FOUND':
      return 'not-found';
    default:
      // Fastify's JSON parser passes JSON.parse's SyntaxError on, with status 400.
      return err instanceof SyntaxError ? 'malformed' : undefined;
  }
}

const ALL_METHODS: readonly HTTPMethods[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

/** The methods a path does not serve, for its 405 route; HEAD comes with GET (Fastify answers it). */
export function otherMethods(taken: Iterable<string>): HTTPMethods[] {
  const served = new Set(taken);
  return ALL_METHODS.filter((m) => !served.has(m) && !(m === 'HEAD' && served.has('GET')));
}

/** Route patterns grouped with the methods registered on each, for the 405 routes. */
export function methodsByUrl(routes: Iterable<{ url: string; method: string }>): Map<string, string[]> {
  const byUrl = new Map<string, string[]>();
  for (const route of routes) byUrl.set(route.url, [...(byUrl.get(route.url) ?? []), route.method]);
  return byUrl;
}

/** An app or a scope of one, with the zod type provider. */
export type HttpApp = ReturnType<typeof createHttpApp>;
