// One HTTP exchange over node:http/https with streaming bodies, and the mapping of transport
// failures and status codes onto the typed image errors. Used by GlanceHttpClient.
import { request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import {
  ImageConflict,
  ImageError,
  ImageGone,
  ImageNotFound,
  ImageRequestRejected,
  ImageServiceUnavailable,
  ImageTooLarge,
} from './image-errors';

export interface HttpExchange {
  method: string;
  url: URL;
  headers: OutgoingHttpHeaders;
  body?: Buffer | Readable;
  signal?: AbortSignal;
  /** Milliseconds without socket activity before giving up. */
  idleTimeoutMs: number;
}

// Errors that mean "the service is not there right now", before it could act on anything.
const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EPIPE']);

/** One request as the client's methods describe it; the client adds base URL, auth and defaults. */
export interface ImageRequest {
  method: string;
  /** relative to the service's base URL, e.g. `v2/images/<id>` */
  path: string;
  headers?: OutgoingHttpHeaders;
  body?: HttpExchange['body'];
  signal?: AbortSignal;
  idleTimeoutMs?: number;
}

export type SendImageRequest = (req: ImageRequest) => Promise<IncomingMessage>;

const UuidSchema = z.string().uuid();

/** Ids go into URL paths; a non-UUID could retarget the request, so it never leaves the client. */
export function checkedId(id: string): string {
  if (!UuidSchema.safeParse(id).success) throw new ImageNotFound(id, `Invalid image id ${JSON.stringify(id)}`);
  return id;
}

/** Sends the request (streaming a Readable body with backpressure) and resolves with the response head. */
export function exchange(x: HttpExchange): Promise<IncomingMessage> {
  return new Promise<IncomingMessage>((resolve, reject) => {
    const send = x.url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(x.url, { method: x.method, headers: x.headers, signal: x.signal, timeout: x.idleTimeoutMs });
    req.on('timeout', () => req.destroy(Object.assign(new Error('image service timed out'), { code: 'ETIMEDOUT' })));
    req.on('response', resolve);
    req.on('error', reject);
    if (x.body === undefined) req.end();
    else if (Buffer.isBuffer(x.body)) req.end(x.body);
    // A body that fails mid-way (source error, abort) destroys req, which rejects via 'error'.
    else pipeline(x.body, req).catch((err: unknown) => reject(err));
  });
}

/** Reads a response body that is expected to be small (JSON or error text). */
export async function readSmallBody(res: IncomingMessage, limit = 4 * 1024 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of res) {
    const buf = chunk as Buffer;
    total += buf.length;
    if (total > limit) {
      res.destroy();
      throw new ImageServiceUnavailable(`image service response exceeds ${limit} bytes`);
    }
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8');
}

const CONNECT_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/** The request never reached the server. */
export function isConnectFailure(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && CONNECT_CODES.has(code);
}

export function isTransportUnavailable(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && UNAVAILABLE_CODES.has(code);
}

/** Turns a non-2xx response into the matching typed error, using the server's message when it sent one. */
export async function errorFromResponse(res: IncomingMessage, imageId: string | undefined): Promise<ImageError> {
  const status = res.statusCode ?? 500;
  const message = extractMessage(await readSmallBody(res).catch(() => ''), status);
  if (status === 404) return new ImageNotFound(imageId ?? '', message);
  if (status === 409) return new ImageConflict(message);
  if (status === 410) return new ImageGone(message);
  if (status === 413) return new ImageTooLarge(message);
  if (status >= 500) return new ImageServiceUnavailable(`image service answered ${status}: ${message}`);
  return new ImageRequestRejected(status, message);
}

function extractMessage(text: string, status: number): string {
  try {
    const parsed: unknown = JSON.parse(text);
    const error = (parsed as { error?: { message?: unknown } } | null)?.error;
    if (typeof error?.message === 'string') return error.message;
  } catch {
    // Real Glance often answers with plain text; fall through and use it as is.
  }
  const trimmed = text.trim();
  return trimmed.length > 0 ? trimmed.slice(0, 1000) : `HTTP ${status}`;
}
