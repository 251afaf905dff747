// Typed image-service failures shared by the server (which maps them to HTTP statuses) and the
// client (which maps HTTP statuses back to them), so both ends speak one vocabulary.
import { errnoCode, errorMessage } from '../../contract';

export abstract class ImageError extends Error {
  /** HTTP status the server answers with for this failure. */
  abstract readonly status: number;
  /** Whether repeating the same call later can succeed; what the activities' retry decision reads. */
  abstract readonly retryable: boolean;
}

export class ImageNotFound extends ImageError {
  override readonly name = 'ImageNotFound';
  readonly status = 404;
  readonly retryable = false;
  constructor(readonly imageId: string, message = `No image found with ID ${imageId}`) {
    super(message);
  }
}

/** The image exists but is in a state that forbids the call (e.g. a second upload). */
export class ImageConflict extends ImageError {
  override readonly name = 'ImageConflict';
  readonly status = 409;
  /** the state may pass: an earlier attempt's upload still ending, or the image killed meanwhile */
  readonly retryable = true;
}

/** Connection refused/reset, timeouts and 5xx: nothing was decided, try again later. */
export class ImageServiceUnavailable extends ImageError {
  override readonly name = 'ImageServiceUnavailable';
  readonly status = 503;
  readonly retryable = true;
}

/**
 * Image data did not arrive intact. The image is killed server-side, and a killed image accepts
 * its data again, so the upload is retried from the first byte.
 */
export class ImageUploadFailed extends ImageError {
  override readonly name = 'ImageUploadFailed';
  readonly retryable = true;
  constructor(
    message: string,
    readonly status: number = 500,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Image bigger than the configured cap, or the backend's disk is full (Glance answers 413 for both). */
export class ImageTooLarge extends ImageError {
  override readonly name = 'ImageTooLarge';
  readonly status = 413;
  readonly retryable = false;
}

/** Image deleted while its data was being uploaded. */
export class ImageGone extends ImageError {
  override readonly name = 'ImageGone';
  readonly status = 410;
  readonly retryable = false;
}

/**
 * A resumable append (PATCH) named an offset other than the committed length; nothing was
 * written. The client resumes from `committedOffset` (also sent as the Upload-Offset header).
 */
export class StagedOffsetMismatch extends ImageError {
  override readonly name = 'StagedOffsetMismatch';
  readonly status = 409;
  readonly retryable = true;
  constructor(
    readonly committedOffset: number,
    message = `Upload-Offset does not match the committed offset ${committedOffset}`,
  ) {
    super(message);
  }
}

/**
 * The md5/sha512 a client sent at commit differ from the bytes the service holds. The image is
 * killed and the staged bytes dropped; a killed image accepts a new upload from the first byte.
 */
export class ImageChecksumMismatch extends ImageError {
  override readonly name = 'ImageChecksumMismatch';
  readonly status = 400;
  readonly retryable = true;
}

/**
 * Verify-after-commit re-read the published bytes and they hash differently from what was
 * received: the storage did not keep them. The image is killed; its upload can start over.
 */
export class ImageVerificationFailed extends ImageError {
  override readonly name = 'ImageVerificationFailed';
  readonly status = 500;
  readonly retryable = true;
}

/**
 * The client sent nothing for longer than the body idle timeout while the service waited for
 * image data: the connection is cut, the partial data discarded. Sending again can succeed.
 */
export class UploadIdleTimeout extends ImageError {
  override readonly name = 'UploadIdleTimeout';
  readonly status = 408;
  readonly retryable = true;
}

/** Any other 4xx: malformed request, forbidden attribute, bad token. Carries the HTTP status. */
export class ImageRequestRejected extends ImageError {
  override readonly name = 'ImageRequestRejected';
  readonly retryable = false;
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export const badRequest = (message: string): ImageRequestRejected => new ImageRequestRejected(400, message);
export const unauthorized = (message: string): ImageRequestRejected => new ImageRequestRejected(401, message);
export const forbidden = (message: string): ImageRequestRejected => new ImageRequestRejected(403, message);

/**
 * What the caller is told of a failure while the service stored image data or its record: a typed
 * error as it is, a full disk as Glance says it (413), anything else as `otherwise` words it.
 */
export function storageFailure(err: unknown, otherwise: (detail: string) => ImageError): ImageError {
  if (err instanceof ImageError) return err;
  const code = errnoCode(err);
  if (code === 'ENOSPC' || code === 'EDQUOT') return new ImageTooLarge('Image storage media is full', { cause: err });
  return otherwise(errorMessage(err));
}
