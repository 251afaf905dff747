// The client half of the resumable upload extension (contract in src/images/README.md), used by
// GlanceHttpClient. A server without the extension (a real Glance) answers its routes 404/405/501
// without the Resumable-Upload header; open and state then resolve null, so callers fall back to
// the plain PUT.
import type { IncomingMessage } from 'node:http';
import { parseOrThrow } from '../../config/validation';
import { imageFromView, type Image } from './glance-image-view';
import { ImageConflict, ImageServiceUnavailable, ImageUploadFailed, StagedOffsetMismatch, badRequest, type ImageError } from './image-errors';
import { checkedId, errorFromResponse, isConnectFailure, readSmallBody, type SendImageRequest } from './http-transport';
import {
  CommitStagedBodySchema,
  OFFSET_OCTET_STREAM,
  OpenStagedBodySchema,
  RESUMABLE_HEADER,
  StagedUploadStateSchema,
  UPLOAD_OFFSET_HEADER,
  parseOffsetHeader,
} from './resumable-wire';
import { meteredBody, type ByteSource } from './upload-body';
import type { LogicalLayout } from './logical-layout';
import { errorMessage } from '../../contract';

/** A resumable upload session as the server reports it: `offset` bytes of `size` are committed. */
export interface StagedUpload {
  offset: number;
  size: number;
  token: string;
}

export interface AppendOptions {
  /** Sent as Content-Length; the body must yield exactly this many bytes. Chunked without it. */
  length?: number;
  signal?: AbortSignal;
  /** Called with the cumulative number of bytes of this append handed to the network. */
  onProgress?: (bytesSent: number) => void;
}

export interface StagedCommit {
  /** Merged into the image's custom properties as it turns active. */
  properties?: Record<string, string>;
}

// What a server without the extension answers on its routes.
const NO_EXTENSION = new Set([404, 405, 501]);

export class ResumableUploadClient {
  constructor(
    private readonly send: SendImageRequest,
    private readonly uploadIdleTimeoutMs: number,
  ) {}

  async open(id: string, size: number, token: string, layout: LogicalLayout): Promise<StagedUpload | null> {
    const body = parseOrThrow(OpenStagedBodySchema, { size, token, layout }, (issues) => badRequest(`Invalid resumable upload: ${issues}`));
    const res = await this.send({ method: 'POST', path: pathOf(id), headers: JSON_TYPE, body: Buffer.from(JSON.stringify(body)) });
    if (res.statusCode === 200 || res.statusCode === 201) return parseState(res);
    if (NO_EXTENSION.has(res.statusCode ?? 0) && !fromExtension(res)) return ignore(res, null);
    throw await errorFromResponse(res, id);
  }

  /** The session, or null when there is none (or no such image, or no extension). */
  async state(id: string): Promise<StagedUpload | null> {
    const res = await this.send({ method: 'GET', path: pathOf(id) });
    if (res.statusCode === 200) return parseState(res);
    if (NO_EXTENSION.has(res.statusCode ?? 0)) return ignore(res, null);
    throw await errorFromResponse(res, id);
  }

  /**
   * Streams `source` as the bytes from `offset` on; resolves with the new committed offset. A
   * failed connect is ImageServiceUnavailable (nothing sent); a failure once bytes flow is
   * ImageUploadFailed, and the server keeps what it received: ask state() where to go on.
   */
  async append(id: string, offset: number, source: ByteSource, options: AppendOptions = {}): Promise<number> {
    if (!Number.isSafeInteger(offset) || offset < 0) throw badRequest(`Invalid offset ${offset}`);
    const metered = meteredBody(source, options);
    const headers: Record<string, string | number> = { 'Content-Type': OFFSET_OCTET_STREAM, [UPLOAD_OFFSET_HEADER]: offset };
    if (options.length !== undefined) headers['Content-Length'] = options.length;
    let res: IncomingMessage;
    try {
      res = await this.send({ method: 'PATCH', path: pathOf(id), headers, body: metered.body, signal: options.signal, idleTimeoutMs: this.uploadIdleTimeoutMs });
    } catch (err) {
      metered.destroy();
      if (err instanceof ImageServiceUnavailable && isConnectFailure(err.cause)) throw err;
      const reason = options.signal?.aborted === true ? 'append aborted' : `append interrupted after ${metered.sent()} bytes`;
      throw new ImageUploadFailed(`${reason}: ${errorMessage(err)}`, 0, { cause: err });
    }
    if (res.statusCode === 204 || res.statusCode === 200) {
      res.resume();
      const committed = parseOffsetHeader(res.headers['upload-offset']);
      if (committed === undefined) throw new ImageServiceUnavailable(`image service answered an append without a valid ${UPLOAD_OFFSET_HEADER}`);
      return committed;
    }
    metered.destroy();
    const committed = res.statusCode === 409 ? parseOffsetHeader(res.headers['upload-offset']) : undefined;
    const error = await this.refusal(res, id);
    if (committed !== undefined) throw new StagedOffsetMismatch(committed, error.message);
    if (error instanceof ImageServiceUnavailable && res.statusCode === 500) throw new ImageUploadFailed(`append failed: ${error.message}`, 500, { cause: error });
    throw error;
  }

  /**
   * Commits a complete session; resolves with the active image. A failure server-side (500, e.g.
   * verification) is ImageUploadFailed: the image is killed and the upload starts over.
   */
  async commit(id: string, commit: StagedCommit): Promise<Image> {
    const body = parseOrThrow(CommitStagedBodySchema, commit, (issues) => badRequest(`Invalid commit: ${issues}`));
    const res = await this.send({ method: 'POST', path: `${pathOf(id)}/commit`, headers: JSON_TYPE, body: Buffer.from(JSON.stringify(body)) });
    if (res.statusCode === 200) {
      const text = await readSmallBody(res);
      try {
        return imageFromView(JSON.parse(text));
      } catch (err) {
        throw new ImageServiceUnavailable(`image service sent an unexpected response: ${errorMessage(err)}`, { cause: err });
      }
    }
    const error = await this.refusal(res, id);
    if (res.statusCode === 500) throw new ImageUploadFailed(`commit failed: ${error.message}`, 500, { cause: error });
    throw error;
  }

  /** Discards the session; nothing to do when there is none. */
  async discard(id: string): Promise<void> {
    const res = await this.send({ method: 'DELETE', path: pathOf(id) });
    if (res.statusCode === 204 || res.statusCode === 200 || NO_EXTENSION.has(res.statusCode ?? 0)) return ignore(res, undefined);
    throw await errorFromResponse(res, id);
  }

  /** The typed error of a refused call; "no session" (404 from the extension) is a conflict: open one first. */
  private async refusal(res: IncomingMessage, id: string): Promise<ImageError> {
    const error = await errorFromResponse(res, id);
    if (res.statusCode === 404 && fromExtension(res)) return new ImageConflict(error.message);
    return error;
  }
}

const JSON_TYPE = { 'Content-Type': 'application/json' };

const pathOf = (id: string): string => `v2/images/${checkedId(id)}/resumable`;

/** The answer comes from the extension about an existing image (not a 404 of a missing route or image). */
const fromExtension = (res: IncomingMessage): boolean => res.headers[RESUMABLE_HEADER.toLowerCase()] !== undefined;

function ignore<T>(res: IncomingMessage, value: T): T {
  res.resume();
  return value;
}

async function parseState(res: IncomingMessage): Promise<StagedUpload> {
  const text = await readSmallBody(res);
  try {
    return StagedUploadStateSchema.parse(JSON.parse(text));
  } catch (err) {
    throw new ImageServiceUnavailable(`image service sent an unexpected resumable upload state: ${errorMessage(err)}`, { cause: err });
  }
}
