// What both logical uploads (guest data, image-stream.ts; chunk names, named-upload.ts) do with
// their resumable session: open it (again), and tell a break they can go on after from a refusal.
import { ImageConflict, ImageGone, ImageServiceUnavailable, ImageUploadFailed, StagedOffsetMismatch, type ImageClient, type LogicalLayout } from '../images/client';

export class ExportChanged extends Error {
  override readonly name = 'ExportChanged';
  /** a new export (and a new map) makes it right */
  readonly retryable = true;
}

/** Opens the image's session for this export and layout; staged bytes of another export or layout are discarded first. */
export async function openStagedSession(options: { images: ImageClient; imageId: string; exportId: string }, size: number, layout: LogicalLayout): Promise<{ offset: number }> {
  const open = () => options.images.openStagedUpload(options.imageId, size, options.exportId, layout);
  let session;
  try {
    session = await open();
  } catch (err) {
    // Staged bytes of another export (an earlier point in time) or another layout: start again.
    if (!(err instanceof ImageConflict) || err instanceof ImageGone) throw err;
    await options.images.discardStaged(options.imageId);
    session = await open();
  }
  if (session === null) throw new ImageConflict('the image service composes images but has no resumable upload');
  return session;
}

/** A break the stream can go on after: the connection, the service, a busy or moved offset. Not a refusal of the image. */
export function isStreamBreak(err: unknown): boolean {
  if (err instanceof StagedOffsetMismatch || err instanceof ImageServiceUnavailable || err instanceof ImageUploadFailed) return true;
  return err instanceof ImageConflict && !(err instanceof ImageGone);
}

/** How a stream goes on after breaks: a few in a row without progress, each after a pause, then the failure stands. */
export class BreakBudget {
  private breaks = 0;

  constructor(private readonly options: { images: ImageClient; imageId: string; signal?: AbortSignal; maxBreaks?: number }) {}

  /** The committed length to go on from after `err` (at `offset`); `err` rethrown when it is no break, or one too many. */
  async resumeAfter(err: unknown, offset: number): Promise<number> {
    this.options.signal?.throwIfAborted();
    if (++this.breaks > (this.options.maxBreaks ?? 3) || !isStreamBreak(err)) throw err;
    // The service may still be finishing the broken request (it answers busy meanwhile); its
    // committed length is then read again before the stream goes on from there.
    await new Promise((r) => setTimeout(r, 300 * this.breaks));
    const staged = await this.options.images.stagedUpload(this.options.imageId);
    if (staged === null) throw err;
    // Only breaks that bring no progress count: a long stream over a flaky link goes on.
    if (staged.offset > offset) this.breaks = 0;
    return staged.offset;
  }
}
