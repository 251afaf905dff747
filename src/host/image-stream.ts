// One pass from the point-in-time export to a committed image: NBD reads of the guest's data, sent
// to a composing image service as a logical upload (the data extents, or only the changed ones over
// a parent image), in segments each acknowledged with the service's committed length; the service
// lays the image out with the same writer. Nothing touches the host's disk. Because the staged bytes
// at any offset are a function of the layout and the guest data, a stream that breaks (connection,
// service restart, a new host worker) goes on from the committed length. A service that cannot
// compose (a real Glance) gets the image itself, laid out here, in one PUT from byte 0.
import { createHash, type Hash } from 'node:crypto';
import { encodeMap, fitLayout, hasChunkUploads, ImageConflict, ImageGone, imageStatus, LOGICAL_DIGEST_PROPERTY, piecesLength, sentPieces, type ImageClient, type LogicalLayout, type Piece } from '../images/client';
import { NbdClient } from '../nbd';
import { emitFrom, LOGICAL_DIGEST_ALGORITHM, LogicalDigest, planImage, type AllocationMap, type ImagePlan } from '../qcow2';
import { namedUpload } from './named-upload';
import { BreakBudget, ExportChanged, openStagedSession } from './staged-session';
import type { StreamImageOptions, StreamOutcome } from './image-stream-types';

export { ExportChanged };
export type { IncrementalSource, StreamImageOptions, StreamOutcome, StreamProgress } from './image-stream-types';

const MiB = 1024 * 1024;
/** the most that a kill can make us send twice, and how often the service acknowledges */
export const DEFAULT_SEGMENT_BYTES = 64 * MiB;
const CATCH_UP_READ = 4 * MiB;
const PIECE_READ = 2 * MiB;
const READS_AHEAD = 4;

/** An incremental's parent image is no longer there to compose on: the stream must go whole. */
export class ParentUnusable extends Error {
  override readonly name = 'ParentUnusable';
}

async function requireActiveParent(images: ImageClient, parentId: string): Promise<void> {
  const status = await imageStatus(images, parentId);
  if (status !== 'active') throw new ParentUnusable(`parent image ${parentId} is ${status}`);
}

/** An ImageConflict of an incremental is the parent's going when the parent is gone. */
async function parentOrRethrow(options: StreamImageOptions, err: unknown): Promise<never> {
  if (options.incremental !== undefined && err instanceof ImageConflict) await requireActiveParent(options.images, options.incremental.parentImageId);
  throw err;
}

export async function streamImage(options: StreamImageOptions): Promise<StreamOutcome> {
  const nbd = await NbdClient.connect({ socketPath: options.socketPath, exportName: options.exportName, metaContexts: [] });
  try {
    if (nbd.exportSize !== options.map.virtualSize) {
      throw new ExportChanged(`export ${options.exportName} has ${nbd.exportSize} bytes, its map ${options.map.virtualSize}`);
    }
    const source = new GuestSource(nbd, options.map);
    if (await options.images.composes()) {
      // A full upload names its chunks when the service takes that (protocol 2): only what the store lacks travels.
      if (options.incremental === undefined && options.namedUploads !== false && hasChunkUploads(options.images) && (await options.images.namesChunks())) return await namedUpload(options, nbd, options.images, layoutOf(options));
      return await logicalUpload(options, source, nbd);
    }
    if (options.incremental !== undefined) throw new ImageConflict('the image service cannot compose images: an incremental snapshot cannot be uploaded to it');
    return await plainUpload(options, planImage(options.map, { format: options.format }), source);
  } finally {
    await nbd.close().catch(() => nbd.destroy());
  }
}

/** What the stream sends: the export's map and changed ranges, coarser when a fragmented disk has more entries than any service takes. */
export function layoutOf(options: Pick<StreamImageOptions, 'format' | 'map' | 'incremental'>): LogicalLayout {
  const inc = options.incremental;
  return fitLayout({ format: options.format, map: encodeMap(options.map), ...(inc !== undefined ? { parent: inc.parentImageId, changed: inc.changed.map(([o, l]): [number, number] => [o, l]) } : {}) });
}

/**
 * A composing service: the guest data the layout names is staged (resumably, in segments the
 * service acknowledges), and the service composes the image at commit, over the parent's chunks
 * for an incremental. A full stream also sends the disk's logical digest, which the service checks
 * against what it composed.
 */
async function logicalUpload(options: StreamImageOptions, source: GuestSource, nbd: NbdClient): Promise<StreamOutcome> {
  const { images, imageId } = options;
  const layout = layoutOf(options);
  const pieces = sentPieces(layout);
  const size = piecesLength(pieces);
  if (options.incremental !== undefined) await requireActiveParent(images, options.incremental.parentImageId);
  const startAt = (await openStagedSession(options, size, layout).catch((err: unknown) => parentOrRethrow(options, err))).offset;
  const full = options.incremental === undefined;
  // An incremental reads only the changed extents; the digest of the whole disk is the service's to make.
  const read = full ? (at: number, len: number) => source.read(at, len) : (at: number, len: number) => nbd.read(at, len);
  const segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
  const budget = new BreakBudget(options);
  let offset = startAt;
  let bytesSent = 0;
  options.onProgress?.({ acknowledged: offset, sent: offset, total: size });
  while (offset < size) {
    const cutter = new SegmentCutter(limited(pieceBytes(pieces, offset, read), options));
    try {
      while (offset < size) {
        const from = offset;
        const length = Math.min(segmentBytes, size - from);
        offset = await images.appendStaged(imageId, from, cutter.next(length), {
          length,
          signal: options.signal,
          onProgress: (sent) => options.onProgress?.({ acknowledged: from, sent: from + sent, total: size }),
        });
        bytesSent += length;
        options.onProgress?.({ acknowledged: offset, sent: offset, total: size });
      }
    } catch (err) {
      const staged = await budget.resumeAfter(err, offset);
      bytesSent += Math.max(0, staged - offset);
      offset = staged;
    } finally {
      await cutter.close();
    }
  }
  const claimed: Record<string, string> = full ? { [LOGICAL_DIGEST_PROPERTY]: `${LOGICAL_DIGEST_ALGORITHM}:${await source.digest()}` } : {};
  const image = await images.commitStaged(imageId, { properties: { ...options.properties, ...claimed } }).catch((err: unknown) => parentOrRethrow(options, err));
  const logicalDigest = image.properties[LOGICAL_DIGEST_PROPERTY]?.split(':')[1] ?? '';
  return { image, size: image.size ?? 0, resumedFrom: startAt, bytesSent, resumable: true, logicalDigest, changedBytes: size };
}

/** The staged stream from staged offset `from`: the pieces' guest data, read ahead a few reads at a time. */
async function* pieceBytes(pieces: readonly Piece[], from: number, read: (offset: number, length: number) => Promise<Buffer>): AsyncGenerator<Buffer> {
  const reads: Promise<Buffer>[] = [];
  let staged = 0;
  for (const piece of pieces) {
    const end = staged + piece.length;
    for (let at = Math.max(from, staged); at < end; at += PIECE_READ) {
      const pending = read(piece.offset + (at - staged), Math.min(PIECE_READ, end - at));
      // A consumer that stops early never awaits the reads ahead: not an unhandled rejection.
      pending.catch(() => undefined);
      reads.push(pending);
      if (reads.length >= READS_AHEAD) yield await (reads.shift() as Promise<Buffer>);
    }
    staged = end;
  }
  while (reads.length > 0) yield await (reads.shift() as Promise<Buffer>);
}

/** Cuts one byte stream into consecutive segments of given lengths, without copying. */
class SegmentCutter {
  private readonly iterator: AsyncIterator<Buffer>;
  private rest: Buffer | null = null;

  constructor(source: AsyncIterable<Buffer>) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  async *next(length: number): AsyncGenerator<Buffer> {
    let left = length;
    while (left > 0) {
      let chunk = this.rest;
      this.rest = null;
      if (chunk === null) {
        const step = await this.iterator.next();
        if (step.done === true) return;
        chunk = step.value;
      }
      if (chunk.length > left) {
        this.rest = chunk.subarray(left);
        chunk = chunk.subarray(0, left);
      }
      left -= chunk.length;
      yield chunk;
    }
  }

  async close(): Promise<void> {
    await this.iterator.return?.(undefined);
  }
}

/**
 * A service without the extension (a real Glance): one PUT of the whole image, from byte 0. Glance
 * marks the image active as soon as its own write ends, so the bytes are checked right after: the
 * size and md5 it reports must be those of what was sent. An image that fails is deleted, which
 * the workflow answers with a new image, so a wrong image never stays active.
 */
async function plainUpload(options: StreamImageOptions, plan: ImagePlan, source: GuestSource): Promise<StreamOutcome> {
  let sent = 0;
  const md5 = createHash('md5');
  await options.images.upload(options.imageId, hashed(limited(emitFrom(plan, 0, (at, len) => source.read(at, len)), options), md5), {
    length: plan.size,
    signal: options.signal,
    onProgress: (bytes) => {
      sent = bytes;
      options.onProgress?.({ acknowledged: 0, sent: bytes, total: plan.size });
    },
  });
  const logicalDigest = await source.digest();
  const image = await options.images.get(options.imageId);
  const expected = md5.digest('hex');
  if (image.status !== 'active' || image.size !== plan.size || image.checksum !== expected) {
    await options.images.delete(options.imageId).catch(() => undefined);
    throw new ImageGone(
      `Image ${options.imageId} failed verification after upload (status ${image.status}, size ${String(image.size)} of ${plan.size}, ` +
        `md5 ${String(image.checksum)} of ${expected}) and was deleted.`,
    );
  }
  return { image, size: plan.size, resumedFrom: 0, bytesSent: sent, resumable: false, logicalDigest, changedBytes: options.map.extents.reduce((n, e) => n + (e.kind === 'data' ? e.length : 0), 0) };
}

async function* hashed(chunks: AsyncIterable<Buffer>, hash: Hash): AsyncGenerator<Buffer> {
  for await (const chunk of chunks) {
    hash.update(chunk);
    yield chunk;
  }
}

export async function* limited(chunks: AsyncIterable<Buffer>, options: StreamImageOptions): AsyncGenerator<Buffer> {
  for await (const chunk of chunks) {
    if (options.limit) await options.limit.take(chunk.length, options.signal);
    yield chunk;
  }
}

/**
 * The guest's data through NBD, fed to the logical digest in disk order. A stream that starts (or
 * restarts) past data the digest has not seen reads that data for the digest alone.
 */
class GuestSource {
  private readonly digestState: LogicalDigest;
  private digestedTo = 0;
  /** first extent that may still hold data the digest has not seen */
  private nextExtent = 0;
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly nbd: NbdClient,
    private readonly map: AllocationMap,
  ) {
    this.digestState = new LogicalDigest(map.virtualSize);
  }

  read(offset: number, length: number): Promise<Buffer> {
    const read = this.nbd.read(offset, length);
    const fed = this.chain.then(async () => {
      const bytes = await read;
      await this.catchUp(offset);
      this.feed(offset, bytes);
      return bytes;
    });
    this.chain = fed.then(
      () => undefined,
      () => undefined,
    );
    return fed;
  }

  async digest(): Promise<string> {
    await this.chain;
    await this.catchUp(this.map.virtualSize);
    return this.digestState.digest();
  }

  private feed(offset: number, bytes: Buffer): void {
    const end = offset + bytes.length;
    if (end <= this.digestedTo) return;
    const from = Math.max(offset, this.digestedTo);
    this.digestState.update(from, bytes.subarray(from - offset));
    this.digestedTo = end;
  }

  /** Reads, for the digest only, the data in [digestedTo, to) that the stream will not. */
  private async catchUp(to: number): Promise<void> {
    const extents = this.map.extents;
    for (; this.nextExtent < extents.length; this.nextExtent++) {
      const extent = extents[this.nextExtent] as (typeof extents)[number];
      if (extent.offset >= to) break;
      const extentEnd = extent.offset + extent.length;
      if (extent.kind === 'data') {
        const end = Math.min(extentEnd, to);
        for (let at = Math.max(extent.offset, this.digestedTo); at < end; at += CATCH_UP_READ) {
          this.feed(at, await this.nbd.read(at, Math.min(CATCH_UP_READ, end - at)));
        }
      }
      // Only partly behind us: the next call goes on inside it.
      if (extentEnd > to) break;
    }
    this.digestedTo = Math.max(this.digestedTo, to);
  }
}
