// How an upload's failures read to the client, the same for plain uploads and resumable sessions:
// a full disk is Glance's 413, anything else of the service's own storage a 500 (a broken append
// a 400), and an image deleted under its upload (or any change) Glance's 410 text.
import { ImageGone, ImageUploadFailed, storageFailure, type ImageError } from '../client/image-errors';
import type { ImageRecord } from '../client/image-record';

/** Glance's answer when the image went while its data was arriving. */
export const deletedDuringUpload = (id: string): ImageGone =>
  new ImageGone(`Image ${id} could not be found after upload. The image may have been deleted during the upload.`);

/** A plain upload's data could not be stored. */
export const storedFailure = (id: string, err: unknown): ImageError =>
  storageFailure(err, (detail) => new ImageUploadFailed(`Image ${id} could not be stored: ${detail}`, 500, { cause: err }));

/** A resumable session's commit failed. */
export const commitFailure = (id: string, err: unknown): ImageError =>
  storageFailure(err, (detail) => new ImageUploadFailed(`The upload of image ${id} could not be committed: ${detail}`, 500, { cause: err }));

/** An append to a resumable session did not complete. */
export const appendFailure = (err: unknown): ImageError =>
  storageFailure(err, (detail) => new ImageUploadFailed(`Image data upload did not complete: ${detail}`, 400, { cause: err }));

/** The record a serialised change starts from; ImageGone when the image went meanwhile. */
export function presentOrGone(id: string, current: ImageRecord | undefined): ImageRecord {
  if (current === undefined || current.status === 'deleted') throw deletedDuringUpload(id);
  return current;
}
