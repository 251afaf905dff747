// HTTP front of the resumable upload extension (contract in src/images/README.md):
// /v2/images/{id}/resumable (POST open, HEAD/GET state, PATCH append, DELETE discard) and
// /v2/images/{id}/resumable/commit (POST). Semantics live in resumable-uploads.ts.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readJsonBody } from '../net/http-body';
import { toGlanceView } from './glance-image-view';
import type { RequestContext } from './image-auth';
import { ImageRequestRejected, ImageTooLarge, StagedOffsetMismatch, badRequest } from './image-errors';
import type { ImageService } from './image-service';
import { GLANCE_BODY_REFUSALS, sendJson } from './http-io';
import {
  OFFSET_OCTET_STREAM,
  RESUMABLE_HEADER,
  RESUMABLE_VERSION,
  UPLOAD_LENGTH_HEADER,
  UPLOAD_OFFSET_HEADER,
  parseOffsetHeader,
  type StagedUploadState,
} from './resumable-wire';

const RESUMABLE_PATH = /^\/v2\/images\/([^/]+)\/resumable$/;
const RESUMABLE_COMMIT_PATH = /^\/v2\/images\/([^/]+)\/resumable\/commit$/;

export interface ResumableExchange {
  service: ImageService;
  ctx: RequestContext;
  req: IncomingMessage;
  res: ServerResponse;
  maxJsonBytes: number;
}

/** Serves the request when its path is a resumable route; false when it is not one. */
export async function routeResumable(pathname: string, method: string, x: ResumableExchange): Promise<boolean> {
  const commit = RESUMABLE_COMMIT_PATH.exec(pathname);
  if (commit?.[1] !== undefined) {
    if (method !== 'POST') throw methodNotAllowed('POST');
    const id = found(x, commit[1]);
    const body = await readJsonBody(x.req, x.maxJsonBytes, GLANCE_BODY_REFUSALS);
    sendJson(x.res, 200, toGlanceView(await x.service.resumable.commit(x.ctx, id, body)));
    return true;
  }
  const session = RESUMABLE_PATH.exec(pathname);
  if (session?.[1] === undefined) return false;
  if (!['POST', 'HEAD', 'GET', 'PATCH', 'DELETE'].includes(method)) throw methodNotAllowed('POST, HEAD, GET, PATCH, DELETE');
  const id = found(x, session[1]);
  const uploads = x.service.resumable;
  if (method === 'POST') {
    const body = await readJsonBody(x.req, x.maxJsonBytes, GLANCE_BODY_REFUSALS);
    const { state, created } = await uploads.open(x.ctx, id, body);
    sendJson(x.res, created ? 201 : 200, state, stateHeaders(state));
  } else if (method === 'HEAD') {
    x.res.writeHead(200, stateHeaders(uploads.state(x.ctx, id))).end();
  } else if (method === 'GET') {
    const state = uploads.state(x.ctx, id);
    sendJson(x.res, 200, state, stateHeaders(state));
  } else if (method === 'PATCH') {
    await append(x, id);
  } else {
    await uploads.discard(x.ctx, id);
    x.res.writeHead(204).end();
  }
  return true;
}

/** The image id, once the image is known to exist for the caller; from here on answers say so. */
function found(x: ResumableExchange, encodedId: string): string {
  const id = decodeURIComponent(encodedId);
  x.service.get(x.ctx, id);
  x.res.setHeader(RESUMABLE_HEADER, RESUMABLE_VERSION);
  return id;
}

async function append(x: ResumableExchange, id: string): Promise<void> {
  const type = (x.req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== OFFSET_OCTET_STREAM) {
    throw new ImageRequestRejected(415, `Unsupported Content-Type '${String(x.req.headers['content-type'])}'; appended data must be ${OFFSET_OCTET_STREAM}`);
  }
  const offset = parseOffsetHeader(x.req.headers['upload-offset']);
  if (offset === undefined) throw badRequest(`${UPLOAD_OFFSET_HEADER} header required: the decimal byte offset the body starts at`);
  const lengthHeader = x.req.headers['content-length'];
  const declared = lengthHeader === undefined ? undefined : Number(lengthHeader);
  try {
    const state = await x.service.resumable.append(x.ctx, id, offset, x.req, Number.isFinite(declared) ? declared : undefined);
    x.res.writeHead(204, stateHeaders(state)).end();
  } catch (err) {
    // The committed offset travels with the refusals a client resumes from; a busy 409 has none.
    if (err instanceof StagedOffsetMismatch) x.res.setHeader(UPLOAD_OFFSET_HEADER, String(err.committedOffset));
    else if (err instanceof ImageTooLarge) {
      const state = currentState(x, id);
      if (state !== undefined) x.res.setHeader(UPLOAD_OFFSET_HEADER, String(state.offset));
    }
    throw err;
  }
}

function currentState(x: ResumableExchange, id: string): StagedUploadState | undefined {
  try {
    return x.service.resumable.state(x.ctx, id);
  } catch {
    return undefined;
  }
}

function stateHeaders(state: StagedUploadState): Record<string, string> {
  return { [UPLOAD_OFFSET_HEADER]: String(state.offset), [UPLOAD_LENGTH_HEADER]: String(state.size), 'Cache-Control': 'no-store' };
}

function methodNotAllowed(allow: string): ImageRequestRejected {
  return new ImageRequestRejected(405, `Method not allowed; use one of ${allow}`);
}
