// The cinder room's transport: one HTTP exchange with Cinder's v3 API, bounded in time (a deadline
// per call: a cinder-api whose broker is away can hold a request for its RPC timeout) and in size
// (a declared length over the cap is refused before a byte is read, and the body is cut off at the
// cap). No shell, no redirects followed, the token only in its header.
import { z } from 'zod';
import { errorMessage } from '../contract';
import { CinderError, parseFault } from './errors';

/** How to reach Cinder for one project: the v3 root, the project in its URLs, and how to get a token. */
export interface CinderConnection {
  /** the volume v3 endpoint's root, without the project: `http://127.0.0.1:8776/v3`; a function when it is found late (Keystone's catalog) */
  baseUrl: string | (() => Promise<string>);
  /** the project every call is scoped to (Cinder's URLs carry it) */
  projectId: string;
  /** a token for that project (Keystone, or noauth's `user:project`) */
  token(): Promise<string>;
  /** per call; default 30 s */
  timeoutMs?: number;
  /** largest response body read; default 4 MiB */
  maxResponseBytes?: number;
}

// 3.27: attachments; 3.22/3.34: snapshot list by metadata and name; 3.66: snapshots of in-use volumes need no force (sent anyway, as Nova does)
export const CINDER_MICROVERSION = '3.66';
const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

const ProjectIdSchema = z.string().regex(/^[0-9a-zA-Z_-]{1,64}$/);

export interface CinderRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** relative to the project's URL: `snapshots/<id>` */
  path: string;
  body?: unknown;
  /** for errors: "POST snapshots" */
  operation: string;
}

export interface CinderResponse {
  status: number;
  text: string;
}

/** The project's URL; the id is checked, since it goes into every path. */
export async function projectUrl(conn: CinderConnection): Promise<string> {
  if (!ProjectIdSchema.safeParse(conn.projectId).success) throw new CinderError('connect', 400, null, `invalid project id ${JSON.stringify(conn.projectId).slice(0, 80)}`);
  const base = typeof conn.baseUrl === 'string' ? conn.baseUrl : await conn.baseUrl();
  return `${base.replace(/\/+$/, '')}/${conn.projectId}`;
}

/** One call; a non-2xx answer is a CinderError with the status and fault code. */
export async function sendCinder(conn: CinderConnection, req: CinderRequest): Promise<CinderResponse> {
  const timeoutMs = conn.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  // a catalog's or a token source's failure is its own, not Cinder's silence
  const url = `${await projectUrl(conn)}/${req.path}`;
  const token = await conn.token();
  const signal = AbortSignal.timeout(timeoutMs);
  let res: Response;
  try {
    res = await fetch(url, {
      method: req.method,
      redirect: 'manual',
      signal,
      headers: {
        'X-Auth-Token': token,
        Accept: 'application/json',
        'OpenStack-API-Version': `volume ${CINDER_MICROVERSION}`,
        ...(req.body === undefined ? {} : { 'Content-Type': 'application/json' }),
      },
      body: req.body === undefined ? undefined : JSON.stringify(req.body),
    });
  } catch (err) {
    const detail = signal.aborted ? `no answer within ${timeoutMs} ms` : errorMessage(err);
    throw new CinderError(req.operation, null, null, detail);
  }
  const text = await readCapped(res, conn.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES, req.operation);
  if (res.status >= 200 && res.status < 300) return { status: res.status, text };
  const { fault, message } = parseFault(text);
  throw new CinderError(req.operation, res.status, fault, message ?? (text.trim().slice(0, 300) || `HTTP ${res.status}`));
}

async function readCapped(res: Response, cap: number, operation: string): Promise<string> {
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > cap) {
    await res.body?.cancel();
    throw new CinderError(operation, null, null, `response of ${declared} bytes exceeds the ${cap}-byte cap`);
  }
  if (res.body === null) return '';
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for await (const chunk of res.body) {
      total += chunk.byteLength;
      if (total > cap) {
        await res.body.cancel().catch(() => undefined);
        throw new CinderError(operation, null, null, `response exceeds the ${cap}-byte cap`);
      }
      chunks.push(chunk);
    }
  } catch (err) {
    if (err instanceof CinderError) throw err;
    throw new CinderError(operation, null, null, `response cut off: ${errorMessage(err)}`);
  }
  return Buffer.concat(chunks).toString('utf8');
}
