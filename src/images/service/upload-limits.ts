// Bounds on the requests that stream image data (plain PUT, resumable PATCH): how many run at
// once across the service (past it: 503 with Retry-After, before a byte is read), and how long a
// client may leave the service waiting for the next byte (past it: the connection is cut).
import type { IncomingMessage } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ImageServiceUnavailable, UploadIdleTimeout } from '../client/image-errors';

export interface UploadLimits {
  /** Data requests served at once; the next gets 503 with Retry-After. */
  maxConcurrentUploads: number;
  /** A client that sends nothing for this long while the service waits for data is cut. */
  bodyIdleTimeoutMs: number;
}

/** Within what the host's one-pass stream needs: 64 MiB segments, one request per running snapshot. */
export const DEFAULT_UPLOAD_LIMITS: UploadLimits = { maxConcurrentUploads: 64, bodyIdleTimeoutMs: 120_000 };

export const RETRY_AFTER_SECONDS = 5;

/** A preHandler for the data routes: admits the request or refuses it, and watches its body. */
export function uploadAdmission(limits: UploadLimits): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
  let running = 0;
  return async (request, reply) => {
    if (running >= limits.maxConcurrentUploads) {
      reply.header('Retry-After', String(RETRY_AFTER_SECONDS));
      throw new ImageServiceUnavailable(`The image service is receiving ${running} uploads, its limit; retry in ${RETRY_AFTER_SECONDS} seconds`);
    }
    running += 1;
    reply.raw.once('close', () => {
      running -= 1;
    });
    watchBodyIdle(request.raw, limits.bodyIdleTimeoutMs);
  };
}

/**
 * Destroys the request with UploadIdleTimeout once no byte has arrived for `idleMs` while its
 * buffer is empty. Only the client's silence counts: while the service itself is slow (hashing,
 * re-reading staged data before it reads the body) the buffer holds bytes, and the clock rests.
 */
export function watchBodyIdle(request: IncomingMessage, idleMs: number): void {
  let lastRead = request.socket.bytesRead;
  let quietSince = Date.now();
  const timer = setInterval(() => {
    if (request.complete || request.destroyed) {
      clearInterval(timer);
      return;
    }
    const read = request.socket.bytesRead;
    if (read !== lastRead || request.readableLength > 0) {
      lastRead = read;
      quietSince = Date.now();
      return;
    }
    if (Date.now() - quietSince < idleMs) return;
    clearInterval(timer);
    request.destroy(new UploadIdleTimeout(`No image data arrived for ${Math.round(idleMs / 1000)} s; the upload is cut and its partial data discarded`));
  }, Math.max(10, Math.min(1000, Math.floor(idleMs / 4))));
  timer.unref();
  request.once('close', () => clearInterval(timer));
}
