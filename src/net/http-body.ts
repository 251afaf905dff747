// Request bodies on plain node:http, read with a cap: nothing beyond `limit` bytes is buffered,
// whatever the client declares. Shared by the compute API and the image service.
import type { IncomingMessage } from 'node:http';

export class BodyTooLarge extends Error {
  override readonly name = 'BodyTooLarge';
  constructor(readonly limit: number) {
    super(`Request body exceeds ${limit} bytes`);
  }
}

/** application/json and the +json media types, with optional parameters (charset). */
export function isJsonContentType(type: string): boolean {
  return /^\s*application\/(?:[\w.+-]+\+)?json\s*(?:;.*)?$/i.test(type);
}

export async function readBoundedBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > limit) throw new BodyTooLarge(limit);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req.iterator({ destroyOnReturn: false })) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
    total += buf.length;
    if (total > limit) throw new BodyTooLarge(limit);
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

/** How a service words each refusal of a JSON body, in its own fault shape (Nova's, Glance's). */
export interface JsonBodyRefusals {
  unsupportedType(type: string): Error;
  tooLarge(err: BodyTooLarge): Error;
  malformed(): Error;
}

/**
 * Reads and parses a JSON body: refused for a non-JSON Content-Type, beyond `limit` bytes (before
 * buffering them) and for text that is not JSON (an empty body included). A missing Content-Type
 * is accepted: some clients send none.
 */
export async function readJsonBody(req: IncomingMessage, limit: number, refuse: JsonBodyRefusals): Promise<unknown> {
  const type = req.headers['content-type'];
  if (type !== undefined && !isJsonContentType(type)) throw refuse.unsupportedType(type);
  let text: string;
  try {
    text = (await readBoundedBody(req, limit)).toString('utf8');
  } catch (err) {
    if (err instanceof BodyTooLarge) throw refuse.tooLarge(err);
    throw err;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw refuse.malformed();
  }
}
