// A minimal HTTP client for API tests: raw status, headers and parsed body, any method/headers/body.
import { request } from 'node:http';

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** Parsed JSON body, or undefined when empty or not JSON. */
  json: unknown;
}

export interface HttpCall {
  method?: string;
  path: string;
  token?: string;
  headers?: Record<string, string>;
  /** Objects are sent as JSON; strings and buffers as they are. */
  body?: unknown;
}

export function call(baseUrl: string, c: HttpCall): Promise<HttpAnswer> {
  const headers: Record<string, string | number> = { ...(c.headers ?? {}) };
  if (c.token !== undefined) headers['X-Auth-Token'] = c.token;
  let payload: Buffer | undefined;
  if (c.body !== undefined) {
    payload = Buffer.isBuffer(c.body) ? c.body : Buffer.from(typeof c.body === 'string' ? c.body : JSON.stringify(c.body));
    if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type') && typeof c.body === 'object') headers['Content-Type'] = 'application/json';
    headers['Content-Length'] = payload.length;
  }
  return new Promise((resolve, reject) => {
    const req = request(new URL(c.path, baseUrl), { method: c.method ?? 'GET', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = text.length > 0 ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** createImage on `serverId` as `token`. */
export function createImage(baseUrl: string, token: string, serverId: string, createImage: unknown, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  return call(baseUrl, { method: 'POST', path: `/v2.1/servers/${serverId}/action`, token, headers, body: { createImage } });
}

/** createBackup on `serverId` as `token`. */
export function createBackup(baseUrl: string, token: string, serverId: string, createBackup: unknown, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  return call(baseUrl, { method: 'POST', path: `/v2.1/servers/${serverId}/action`, token, headers, body: { createBackup } });
}

/** Polls `probe` until it returns a value other than undefined, or fails at the deadline (visibility is eventually consistent). */
export async function eventually<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
