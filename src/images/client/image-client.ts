// The image API the rest of the system codes against, and its HTTP implementation for our
// service or a real Glance v2 endpoint. Uploads and downloads stream; nothing is buffered whole.
// The resumable upload extension's calls are implemented in resumable-client.ts.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import { z } from 'zod';
import { imageFromView, type Image } from './glance-image-view';
import { ImageNotFound, ImageServiceUnavailable, ImageUploadFailed } from './image-errors';
import { checkedId, errorFromResponse, exchange, isConnectFailure, isTransportUnavailable, readSmallBody, type ImageRequest } from './http-transport';
import { JSON_PATCH_MEDIA_TYPE, type ImageFormats, type SNAPSHOT_WRITE_LOCK } from './image-record';
import { ResumableUploadClient, type AppendOptions, type StagedCommit, type StagedUpload } from './resumable-client';
import { meteredBody, type ByteSource } from './upload-body';
import { STORE_CAPABILITIES_URL, StoreCapabilitiesSchema, type LogicalLayout, type StoreCapabilities } from './logical-layout';
import { ChunkClient, type ChunkUploads } from './chunk-client';
import { STORE_VERIFY_URL, StoreVerifyStatusSchema, VerifyJobSchema, type StoreVerifyStatus, type VerifyJob } from './store-verify-wire';
import { errorMessage } from '../../contract';

export type { Image } from './glance-image-view';
export type { AppendOptions, StagedCommit, StagedUpload } from './resumable-client';

export interface CreateImageRequest {
  /** Client-chosen id makes creation idempotent across retries (a repeat answers ImageConflict). */
  id?: string;
  name: string;
  container_format?: string;
  disk_format?: string;
  visibility?: 'public' | 'private' | 'shared' | 'community';
  /** Admin only: create on behalf of another project. */
  owner?: string;
  min_disk?: number;
  min_ram?: number;
  tags?: string[];
  /** Custom properties, sent as extra top-level keys like Glance expects. */
  properties?: Record<string, string>;
  /** Our image service only: only the snapshot service may write the image until its commit. */
  snapshot_write_lock?: typeof SNAPSHOT_WRITE_LOCK;
}

export interface ImageListFilter {
  owner?: string;
  status?: string;
  name?: string;
}

export interface UploadOptions {
  /** Called with the cumulative number of bytes handed to the network. */
  onProgress?: (bytesDone: number) => void;
  signal?: AbortSignal;
  /**
   * Sent as Content-Length (a file path's size is used when omitted); the source must yield
   * exactly this many bytes. Without it a stream or generator is sent chunked.
   */
  length?: number;
}

export interface ImageClient {
  create(meta: CreateImageRequest): Promise<Image>;
  get(id: string): Promise<Image>;
  list(filter?: ImageListFilter): Promise<Image[]>;
  delete(id: string): Promise<void>;
  /** Glance PATCH replace of the formats, before the image has data (the snapshot's real format). */
  setFormats(id: string, formats: ImageFormats): Promise<Image>;
  /** Glance PATCH add of custom properties (a volume-backed snapshot's block device mapping). */
  setProperties(id: string, properties: Record<string, string>): Promise<Image>;
  /** Glance's plain PUT of the whole data: a file path, a stream, or an async iterable of buffers (e.g. a generator). */
  upload(id: string, source: Readable | string | AsyncIterable<Buffer>, options?: UploadOptions): Promise<void>;
  download(id: string, options?: { signal?: AbortSignal }): Promise<Readable>;
  /**
   * Opens or re-opens a resumable upload; null when the server has no resumable extension
   * (404/405/501 on the route, e.g. a real Glance). Throws ImageConflict (409) when a session
   * with another size/token exists.
   */
  openStagedUpload(id: string, size: number, token: string, layout: LogicalLayout): Promise<StagedUpload | null>;
  /**
   * Whether the service composes logical uploads (stores chunks, takes incrementals over a parent
   * image): ours does, a real Glance does not. Asked once per client.
   */
  composes(): Promise<boolean>;
  /** Current session or null when none. */
  stagedUpload(id: string): Promise<StagedUpload | null>;
  /**
   * Appends body at offset; resolves with the server's new committed offset. On 409 offset
   * mismatch throws StagedOffsetMismatch (with `committedOffset`).
   */
  appendStaged(id: string, offset: number, body: AsyncIterable<Buffer> | Readable, options?: AppendOptions): Promise<number>;
  /** Commits (server verifies); resolves with the active image. */
  commitStaged(id: string, commit: StagedCommit): Promise<Image>;
  /** Discards the session (no error when none). */
  discardStaged(id: string): Promise<void>;
}

/**
 * Glance's location API for service users (Glance 2024.2+, `POST /v2/images/{id}/locations`): the
 * image's data is already in one of Glance's stores, and Glance is told where. What Nova's direct
 * snapshot hands Glance instead of the bytes. Only GlanceHttpClient has it; a service without the
 * route answers 404 or 405 (an older Glance, the embedded image service).
 */
export interface ImageLocations {
  /** Asks Glance to take `url` as the queued image's data; Glance checks it and turns the image active asynchronously. */
  addLocation(id: string, url: string): Promise<void>;
  /** The image's locations' URLs (service users only). */
  locationUrls(id: string): Promise<string[]>;
}

export function hasImageLocations<T extends object>(images: T): images is T & ImageLocations {
  return typeof (images as Partial<ImageLocations>).addLocation === 'function' && typeof (images as Partial<ImageLocations>).locationUrls === 'function';
}

const LocationsSchema = z.array(z.object({ url: z.string() }).passthrough());

/** The image's status, or 'deleted' when the service no longer has it (Glance answers 404 for a deleted image). */
export async function imageStatus(images: Pick<ImageClient, 'get'>, id: string): Promise<string> {
  try {
    return (await images.get(id)).status;
  } catch (err) {
    if (err instanceof ImageNotFound) return 'deleted';
    throw err;
  }
}

export interface GlanceHttpClientOptions {
  /** Socket idle timeout for metadata calls and downloads (default 60 s). */
  idleTimeoutMs?: number;
  /**
   * Idle timeout for uploads (default 15 min): after the last byte the server fsyncs the whole
   * image before answering, which on a slow disk can take minutes with no traffic.
   */
  uploadIdleTimeoutMs?: number;
}

const LIST_PATH = 'v2/images';
/** Pages of one listing: Glance's largest page is 1000 images (api_limit_max). */
const LIST_PAGE_LIMIT = 1000;
const ListPageSchema = z.object({ images: z.array(z.unknown()), next: z.string().optional() });

export class GlanceHttpClient implements ImageClient, ImageLocations, ChunkUploads {
  private readonly base: URL;
  private readonly idleTimeoutMs: number;
  private readonly uploadIdleTimeoutMs: number;
  private readonly staged: ResumableUploadClient;
  private readonly chunks: ChunkClient;
  /** the store's capability document, null from a service without one (a real Glance) */
  private capabilities: Promise<StoreCapabilities | null> | undefined;

  constructor(
    baseUrl: string,
    /** A fixed token, or where to get a current one for each request (a Keystone service user's). */
    private readonly token?: string | (() => Promise<string>),
    options: GlanceHttpClientOptions = {},
  ) {
    this.base = new URL(baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
    this.idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
    this.uploadIdleTimeoutMs = options.uploadIdleTimeoutMs ?? 15 * 60_000;
    this.staged = new ResumableUploadClient((req) => this.send(req), this.uploadIdleTimeoutMs);
    this.chunks = new ChunkClient((req) => this.send({ ...req, idleTimeoutMs: this.uploadIdleTimeoutMs }));
  }

  async create(meta: CreateImageRequest): Promise<Image> {
    const { properties, ...known } = meta;
    const body = Buffer.from(JSON.stringify({ ...properties, ...known }));
    const res = await this.send({ method: 'POST', path: 'v2/images', headers: { 'Content-Type': 'application/json' }, body });
    return this.expectJson(res, 201, meta.id, imageFromView);
  }

  async get(id: string): Promise<Image> {
    const res = await this.send({ method: 'GET', path: `v2/images/${checkedId(id)}` });
    return this.expectJson(res, 200, id, imageFromView);
  }

  /**
   * Follows Glance's `next` links so callers get every matching image regardless of page size,
   * for at most LIST_PAGE_LIMIT pages, and only within the listing on the configured endpoint.
   */
  async list(filter: ImageListFilter = {}): Promise<Image[]> {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(filter)) if (typeof value === 'string') query.set(key, value);
    let path: string | undefined = `${LIST_PATH}${query.size > 0 ? `?${query.toString()}` : ''}`;
    const out: Image[] = [];
    for (let pages = 0; path !== undefined; pages++) {
      if (pages === LIST_PAGE_LIMIT) throw new ImageServiceUnavailable(`image service listed more than ${LIST_PAGE_LIMIT} pages; the listing was stopped`);
      const res = await this.send({ method: 'GET', path });
      const page = await this.expectJson(res, 200, undefined, (json) => ListPageSchema.parse(json));
      out.push(...page.images.map(imageFromView));
      path = page.next === undefined ? undefined : this.nextListPath(page.next);
    }
    return out;
  }

  /**
   * Glance's `next` is a path on its own endpoint ("/v2/images?marker=…"), resolved under the
   * configured base as before. Anything that lands elsewhere (another origin, another path) would
   * carry the token to where the service points, so it is refused, never followed.
   */
  private nextListPath(next: string): string {
    const listing = new URL(LIST_PATH, this.base);
    let target: URL | undefined;
    try {
      target = new URL(next.replace(/^\/(?!\/)/, ''), this.base);
    } catch {
      target = undefined;
    }
    if (target === undefined || target.origin !== listing.origin || target.pathname !== listing.pathname) {
      throw new ImageServiceUnavailable(`image service sent a next link outside its own image listing (${listing.origin}${listing.pathname}); not followed`);
    }
    return `${LIST_PATH}${target.search}`;
  }

  async setFormats(id: string, formats: ImageFormats): Promise<Image> {
    const ops = Object.entries(formats)
      .filter(([, value]) => value !== undefined)
      .map(([key, value]) => ({ op: 'replace', path: `/${key}`, value }));
    return this.patch(id, ops);
  }

  async setProperties(id: string, properties: Record<string, string>): Promise<Image> {
    const ops = Object.entries(properties).map(([key, value]) => ({ op: 'add', path: `/${key}`, value }));
    return this.patch(id, ops);
  }

  private async patch(id: string, ops: { op: string; path: string; value: unknown }[]): Promise<Image> {
    const body = Buffer.from(JSON.stringify(ops));
    const res = await this.send({ method: 'PATCH', path: `v2/images/${checkedId(id)}`, headers: { 'Content-Type': JSON_PATCH_MEDIA_TYPE }, body });
    return this.expectJson(res, 200, id, imageFromView);
  }

  async addLocation(id: string, url: string): Promise<void> {
    const body = Buffer.from(JSON.stringify({ url }));
    const res = await this.send({ method: 'POST', path: `v2/images/${checkedId(id)}/locations`, headers: { 'Content-Type': 'application/json' }, body });
    if (res.statusCode !== 202 && res.statusCode !== 200 && res.statusCode !== 204) throw await errorFromResponse(res, id);
    res.resume();
  }

  async locationUrls(id: string): Promise<string[]> {
    const res = await this.send({ method: 'GET', path: `v2/images/${checkedId(id)}/locations` });
    return (await this.expectJson(res, 200, id, (json) => LocationsSchema.parse(json))).map((l) => l.url);
  }

  async delete(id: string): Promise<void> {
    const res = await this.send({ method: 'DELETE', path: `v2/images/${checkedId(id)}` });
    if (res.statusCode !== 204 && res.statusCode !== 200) throw await errorFromResponse(res, id);
    res.resume();
  }

  /**
   * Streams the data with backpressure. Connection refused before anything is sent surfaces as
   * ImageServiceUnavailable; a failure once bytes flow is ImageUploadFailed (the server kills the image).
   */
  async upload(id: string, source: Readable | string | AsyncIterable<Buffer>, options: UploadOptions = {}): Promise<void> {
    const headers: OutgoingHttpHeaders = { 'Content-Type': 'application/octet-stream' };
    let length = options.length;
    let input: ByteSource;
    if (typeof source === 'string') {
      length ??= (await stat(source)).size;
      input = createReadStream(source);
    } else {
      input = source;
    }
    if (length !== undefined) headers['Content-Length'] = length;
    const metered = meteredBody(input, { length, onProgress: options.onProgress });
    let res: IncomingMessage;
    try {
      res = await this.send({
        method: 'PUT',
        path: `v2/images/${checkedId(id)}/file`,
        headers,
        body: metered.body,
        signal: options.signal,
        idleTimeoutMs: this.uploadIdleTimeoutMs,
      });
    } catch (err) {
      metered.destroy();
      // Only a failed connect is known to have left the image untouched (still queued) and so
      // safe to retry; any later failure may have killed it server-side.
      if (err instanceof ImageServiceUnavailable && isConnectFailure(err.cause)) throw err;
      const reason = options.signal?.aborted === true ? 'upload aborted' : `upload interrupted after ${metered.sent()} bytes`;
      throw new ImageUploadFailed(`${reason}: ${errorMessage(err)}`, 0, { cause: err });
    }
    if (res.statusCode === 204 || res.statusCode === 200) {
      res.resume();
      return;
    }
    metered.destroy();
    const error = await errorFromResponse(res, id);
    if (error instanceof ImageNotFound || (res.statusCode ?? 0) === 409) throw error;
    throw new ImageUploadFailed(`image upload rejected: ${error.message}`, error.status, { cause: error });
  }

  /** The image data as a stream (empty when the image has no data yet, like Glance's 204). */
  async download(id: string, options: { signal?: AbortSignal } = {}): Promise<Readable> {
    const res = await this.send({ method: 'GET', path: `v2/images/${checkedId(id)}/file`, signal: options.signal });
    if (res.statusCode === 204) {
      res.resume();
      return Readable.from([]);
    }
    if (res.statusCode !== 200) throw await errorFromResponse(res, id);
    return res;
  }

  openStagedUpload(id: string, size: number, token: string, layout: LogicalLayout): Promise<StagedUpload | null> {
    return this.staged.open(id, size, token, layout);
  }

  async composes(): Promise<boolean> {
    return (await this.storeCapabilities())?.compose === true;
  }

  async namesChunks(): Promise<boolean> {
    const caps = await this.storeCapabilities();
    return caps?.compose === true && caps.logical_upload_versions?.includes(2) === true;
  }

  knownChunks(id: string, names: readonly string[], signal?: AbortSignal): Promise<Set<string>> {
    return this.chunks.known(id, names, signal);
  }

  putChunk(id: string, name: string, bytes: Buffer, signal?: AbortSignal): Promise<void> {
    return this.chunks.put(id, name, bytes, signal);
  }

  private storeCapabilities(): Promise<StoreCapabilities | null> {
    this.capabilities ??= this.askCapabilities().catch((err: unknown) => {
      // Not cached: the service may just be down for a moment.
      this.capabilities = undefined;
      throw err;
    });
    return this.capabilities;
  }

  private async askCapabilities(): Promise<StoreCapabilities | null> {
    const res = await this.send({ method: 'GET', path: STORE_CAPABILITIES_URL.slice(1) });
    if (res.statusCode === 404) {
      res.resume();
      return null;
    }
    return this.expectJson(res, 200, undefined, (json) => StoreCapabilitiesSchema.parse(json));
  }

  /** Our service's store verify jobs (cloud admins): the job running or the last one, and the schedule. */
  async storeVerifyStatus(): Promise<StoreVerifyStatus> {
    const res = await this.send({ method: 'GET', path: STORE_VERIFY_URL.slice(1) });
    return this.expectJson(res, 200, undefined, (json) => StoreVerifyStatusSchema.parse(json));
  }

  /** Starts a store verify job now; ImageConflict while one runs. */
  async startStoreVerify(): Promise<VerifyJob> {
    const res = await this.send({ method: 'POST', path: STORE_VERIFY_URL.slice(1) });
    return this.expectJson(res, 202, undefined, (json) => z.object({ job: VerifyJobSchema }).parse(json).job);
  }

  stagedUpload(id: string): Promise<StagedUpload | null> {
    return this.staged.state(id);
  }

  appendStaged(id: string, offset: number, body: AsyncIterable<Buffer> | Readable, options: AppendOptions = {}): Promise<number> {
    return this.staged.append(id, offset, body, options);
  }

  commitStaged(id: string, commit: StagedCommit): Promise<Image> {
    return this.staged.commit(id, commit);
  }

  discardStaged(id: string): Promise<void> {
    return this.staged.discard(id);
  }

  private async send(req: ImageRequest): Promise<IncomingMessage> {
    const headers: OutgoingHttpHeaders = { Accept: 'application/json', ...req.headers };
    if (this.token !== undefined) headers['X-Auth-Token'] = typeof this.token === 'string' ? this.token : await this.token();
    try {
      return await exchange({
        method: req.method,
        url: new URL(req.path, this.base),
        headers,
        body: req.body,
        signal: req.signal,
        idleTimeoutMs: req.idleTimeoutMs ?? this.idleTimeoutMs,
      });
    } catch (err) {
      if (isTransportUnavailable(err)) {
        throw new ImageServiceUnavailable(`image service at ${this.base.origin} unavailable: ${errorMessage(err)}`, { cause: err });
      }
      throw err;
    }
  }

  private async expectJson<T>(res: IncomingMessage, status: number, id: string | undefined, parse: (json: unknown) => T): Promise<T> {
    if (res.statusCode !== status) throw await errorFromResponse(res, id);
    const text = await readSmallBody(res);
    try {
      return parse(JSON.parse(text));
    } catch (err) {
      throw new ImageServiceUnavailable(`image service sent an unexpected response: ${errorMessage(err)}`, { cause: err });
    }
  }
}
