// The client half of the named upload's chunk routes (protocol 2, chunk-wire.ts), used by
// GlanceHttpClient: which names the service lets this upload use unsent, and one chunk's bytes.
import { parseOrThrow } from '../../config/validation';
import { CHUNK_NAME_BYTES, KnownChunksAnswerSchema, KnownChunksBodySchema, MAX_KNOWN_QUERY } from './chunk-wire';
import { ImageServiceUnavailable, badRequest } from './image-errors';
import { checkedId, errorFromResponse, readSmallBody, type SendImageRequest } from './http-transport';
import { errorMessage } from '../../contract';

/** The chunk calls of a service that takes named uploads; GlanceHttpClient has them, test doubles may not. */
export interface ChunkUploads {
  /** Whether the service takes named uploads (protocol 2). Asked once per client. */
  namesChunks(): Promise<boolean>;
  /** Of `names` (hex, at most MAX_KNOWN_QUERY), those the image's open named upload may use without sending them. */
  knownChunks(id: string, names: readonly string[], signal?: AbortSignal): Promise<Set<string>>;
  /** One chunk's bytes under its name; the service refuses (ImageChecksumMismatch) bytes that do not hash to it. */
  putChunk(id: string, name: string, bytes: Buffer, signal?: AbortSignal): Promise<void>;
}

export function hasChunkUploads<T extends object>(images: T): images is T & ChunkUploads {
  const c = images as Partial<ChunkUploads>;
  return typeof c.namesChunks === 'function' && typeof c.knownChunks === 'function' && typeof c.putChunk === 'function';
}

export class ChunkClient {
  constructor(private readonly send: SendImageRequest) {}

  async known(id: string, names: readonly string[], signal?: AbortSignal): Promise<Set<string>> {
    if (names.length > MAX_KNOWN_QUERY) throw badRequest(`At most ${MAX_KNOWN_QUERY} chunk names in one question, got ${names.length}`);
    const body = parseOrThrow(KnownChunksBodySchema, { chunks: [...names] }, (issues) => badRequest(`Invalid known-chunks question: ${issues}`));
    const res = await this.send({ method: 'POST', path: `${base(id)}/known`, headers: { 'Content-Type': 'application/json' }, body: Buffer.from(JSON.stringify(body)), signal });
    if (res.statusCode !== 200) throw await errorFromResponse(res, id);
    const text = await readSmallBody(res);
    let known: string[];
    try {
      known = KnownChunksAnswerSchema.parse(JSON.parse(text)).known;
    } catch (err) {
      throw new ImageServiceUnavailable(`image service sent an unexpected known-chunks answer: ${errorMessage(err)}`, { cause: err });
    }
    const asked = new Set(names);
    // Only names we asked about: an answer naming others is the service's error, not ours to use.
    if (known.some((n) => !asked.has(n))) throw new ImageServiceUnavailable('image service answered with chunk names it was not asked about');
    return new Set(known);
  }

  async put(id: string, name: string, bytes: Buffer, signal?: AbortSignal): Promise<void> {
    if (!/^[0-9a-f]{64}$/.test(name) || name.length !== CHUNK_NAME_BYTES * 2) throw badRequest(`Invalid chunk name '${name}'`);
    const res = await this.send({ method: 'PUT', path: `${base(id)}/${name}`, headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': bytes.length }, body: bytes, signal });
    if (res.statusCode === 204 || res.statusCode === 200) {
      res.resume();
      return;
    }
    throw await errorFromResponse(res, id);
  }
}

const base = (id: string): string => `v2/images/${checkedId(id)}/chunks`;
