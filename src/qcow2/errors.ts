// Typed errors. A layout error is the caller's fault (a bad map or option) and never passes on a
// retry; a source error means the guest reader broke its contract, which a retry may not fix either,
// but the caller should know it was the data side and not the map.

export type Qcow2LayoutErrorCode =
  | 'bad-option' // cluster size, refcount width, format, chunking
  | 'bad-map' // extents unsorted, overlapping, gapped, empty, beyond the disk
  | 'too-large' // beyond our cap or a QEMU implementation limit
  | 'bad-offset'; // emitFrom outside [0, size]

/** The allocation map or the options cannot give a valid image; nothing was emitted. */
export class Qcow2LayoutError extends Error {
  override readonly name = 'Qcow2LayoutError';
  readonly retryable = false;

  constructor(
    readonly code: Qcow2LayoutErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** The guest reader answered a read with the wrong number of bytes. */
export class Qcow2SourceError extends Error {
  override readonly name = 'Qcow2SourceError';

  constructor(
    readonly guestOffset: number,
    readonly expectedLength: number,
    readonly actualLength: number,
  ) {
    super(`guest read at ${guestOffset} returned ${actualLength} bytes, expected ${expectedLength}`);
  }
}
