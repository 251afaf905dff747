// A full snapshot as a named upload (protocol 2, images/client/chunk-wire.ts): the host reads each
// 256 KiB chunk of the disk its data touches, names it by its SHA-256 (the one hash every byte
// pays: the logical digest is derived from those names), asks the image service which names the
// image's project already holds, sends only the other chunks' bytes, and stages the names. A second
// instance made from the same base image then sends only the chunks it changed. The staged names at
// any offset are a function of the guest data, so a stream that breaks goes on from the service's
// committed length, as the guest-data upload does; chunks already sent are known to the session.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  CHUNK_NAME_BYTES,
  LOGICAL_DIGEST_PROPERTY,
  MAX_KNOWN_QUERY,
  NAMED_CHUNK_BYTES,
  ZERO_CHUNK_NAME,
  namedSlots,
  slotLength,
  type ChunkUploads,
  type ImageClient,
  type LogicalLayout,
} from '../images/client';
import { RequestsInFlight } from '../contract';
import type { NbdClient } from '../nbd';
import { LOGICAL_DIGEST_ALGORITHM, LogicalDigest } from '../qcow2';
import type { StreamImageOptions, StreamOutcome } from './image-stream-types';
import { BreakBudget, ExportChanged, openStagedSession } from './staged-session';

/** A window of chunks and where its names go in the staged table (bytes). */
interface Window {
  /** its first slot's index in the upload's slots */
  first: number;
  /** after a break, only the names and data counts are still its own: the bytes belong to a later window */
  chunks: NamedChunk[];
  start: number;
  end: number;
}

/** Slots read, named and asked about at once: 16 MiB of disk; two windows (32 MiB) are held, one travelling, one read ahead. */
const WINDOW_SLOTS = 64;
/**
 * Chunks sent side by side: with 4 the service waited between requests; 12 measured faster than 6
 * and 8 in each interleaved round (docs/benchmarks.md). A worker killed mid-stream leaves at most
 * these cut short, to be sent again.
 */
export const CHUNK_PUTS_IN_FLIGHT = 12;
const ZEROS = Buffer.alloc(NAMED_CHUNK_BYTES);

interface NamedChunk {
  slot: number;
  /** the chunk's SHA-256; all zeros for a chunk of zeros */
  name: Buffer;
  /** its bytes, null for a chunk of zeros */
  bytes: Buffer | null;
  /** guest data bytes the map has in it */
  data: number;
}

export async function namedUpload(options: StreamImageOptions, nbd: NbdClient, images: ImageClient & ChunkUploads, guestLayout: LogicalLayout): Promise<StreamOutcome> {
  const { imageId, map } = options;
  const layout: LogicalLayout = { ...guestLayout, staged: 'chunk-names' };
  const slots = namedSlots(layout);
  const size = slots.length * CHUNK_NAME_BYTES;
  const startAt = (await openStagedSession(options, size, layout)).offset;
  const reader = new ChunkReader(nbd, layout);
  const digest = new LogicalDigest(map.virtualSize);
  // Progress counts guest data named, as the guest-data upload counts guest data staged: the same total, whatever dedup saves.
  const total = map.extents.reduce((n, e) => n + (e.kind === 'data' ? e.length : 0), 0);
  let named = 0;
  const budget = new BreakBudget(options);
  let offset = startAt;
  let bytesSent = 0;
  const progress = (): void => options.onProgress?.({ acknowledged: named, sent: named, total });
  progress();
  const readWindow = (first: number): Promise<Window | null> => {
    if (first >= slots.length) return Promise.resolve(null);
    const reading = reader.read(slots.slice(first, first + WINDOW_SLOTS)).then((chunks) => ({ first, chunks, start: first * CHUNK_NAME_BYTES, end: (first + chunks.length) * CHUNK_NAME_BYTES }));
    // A stream that fails never awaits the window ahead: not an unhandled rejection.
    reading.catch(() => undefined);
    return reading;
  };
  const appendNames = async (window: Window): Promise<number> => {
    // The service's committed names never go back past what it acknowledged.
    if (offset < window.start) throw new ExportChanged(`the image service holds ${offset} bytes of names, ${window.start} were acknowledged`);
    const names = Buffer.concat(window.chunks.map((c) => c.name)).subarray(offset - window.start);
    const at = await images.appendStaged(imageId, offset, Readable.from([names]), { length: names.length, signal: options.signal });
    bytesSent += names.length;
    return at;
  };
  const acknowledged = (window: Window): void => {
    named += window.chunks.reduce((n, c) => n + c.data, 0);
    progress();
  };
  // After a break: the windows not acknowledged read again from the export (their buffers went to
  // the windows after them), sent and appended from the service's committed length, one by one.
  const redeliver = async (err: unknown, held: readonly Window[]): Promise<void> => {
    offset = await budget.resumeAfter(err, offset);
    for (const window of held) {
      if (offset < window.end) {
        const again = (await readWindow(window.first)) as Window;
        while (offset < again.end) {
          try {
            bytesSent += await sendUnknown(options, images, again.chunks);
            offset = await appendNames(again);
          } catch (next) {
            offset = await budget.resumeAfter(next, offset);
          }
        }
      }
      acknowledged(window);
    }
  };
  // A window's chunks travel while the previous window's names are appended (the service makes
  // its chunks durable first) and the next window is read into the buffer the previous one used.
  let previous: { window: Window; append: Promise<number> } | null = null;
  for (let window = await readWindow(0); window !== null; ) {
    // Named in order, once: a window read again after a break is not.
    for (const chunk of window.chunks) if (chunk.bytes !== null) digest.updateBlockHash(chunk.slot * NAMED_CHUNK_BYTES, chunk.name);
    const next = window.first + window.chunks.length;
    if (window.end <= startAt) {
      // Named before the break this stream goes on from: only its digest was wanted.
      acknowledged(window);
      window = await readWindow(next);
      continue;
    }
    const appending = previous?.append ?? Promise.resolve(offset);
    const readAhead = readWindow(next);
    const [sent, appended] = await Promise.allSettled([sendUnknown(options, images, window.chunks), appending]);
    if (sent.status === 'fulfilled') bytesSent += sent.value;
    if (appended.status === 'fulfilled') {
      offset = appended.value;
      if (previous !== null) acknowledged(previous.window);
    }
    if (appended.status === 'rejected' || sent.status === 'rejected') {
      const held = appended.status === 'rejected' && previous !== null ? [previous.window, window] : [window];
      // The window ahead is read again once the held ones are through: its buffer is theirs meanwhile.
      await readAhead.catch(() => undefined);
      await redeliver(appended.status === 'rejected' ? appended.reason : (sent as PromiseRejectedResult).reason, held);
      previous = null;
      window = await readWindow(next);
      continue;
    }
    const append = appendNames(window);
    append.catch(() => undefined);
    previous = { window, append };
    window = await readAhead;
  }
  if (previous !== null) {
    try {
      offset = await previous.append;
      acknowledged(previous.window);
    } catch (err) {
      await redeliver(err, [previous.window]);
    }
  }
  const logicalDigest = digest.digest();
  const claimed = { [LOGICAL_DIGEST_PROPERTY]: `${LOGICAL_DIGEST_ALGORITHM}:${logicalDigest}` };
  const image = await images.commitStaged(imageId, { properties: { ...options.properties, ...claimed } });
  return { image, size: image.size ?? 0, resumedFrom: startAt, bytesSent, resumable: true, logicalDigest, changedBytes: total };
}

/** Sends the window's chunks the service does not let the upload use unsent; the bytes sent. */
async function sendUnknown(options: StreamImageOptions, images: ChunkUploads, window: readonly NamedChunk[]): Promise<number> {
  const byName = new Map<string, Buffer>();
  for (const chunk of window) if (chunk.bytes !== null) byName.set(chunk.name.toString('hex'), chunk.bytes);
  const names = [...byName.keys()];
  const unknown: string[] = [];
  for (let i = 0; i < names.length; i += MAX_KNOWN_QUERY) {
    const asked = names.slice(i, i + MAX_KNOWN_QUERY);
    const known = await images.knownChunks(options.imageId, asked, options.signal);
    for (const name of asked) if (!known.has(name)) unknown.push(name);
  }
  let sent = 0;
  // A failed chunk stops more from starting, and every put has ended before the retry asks again:
  // none of this attempt's chunks is still travelling beside the next attempt's.
  await new RequestsInFlight(CHUNK_PUTS_IN_FLIGHT).each(unknown, async (name) => {
    const bytes = byName.get(name) as Buffer;
    if (options.limit) await options.limit.take(bytes.length, options.signal);
    await images.putChunk(options.imageId, name, bytes, options.signal);
    sent += bytes.length;
  });
  return sent;
}

/**
 * The disk's chunks through NBD: the map's data extents read, zeros elsewhere, each named. The
 * bytes go into two window-sized buffers used in turn, so a stream allocates them once: a window's
 * chunk bytes stay valid until the read after the next one starts.
 */
class ChunkReader {
  private readonly data: { offset: number; end: number }[];
  private readonly buffers = [Buffer.allocUnsafe(0), Buffer.allocUnsafe(0)];
  private turn = 0;
  private cursor = 0;
  private lastSlot = 0;

  constructor(
    private readonly nbd: NbdClient,
    private readonly layout: LogicalLayout,
  ) {
    this.data = layout.map.extents.filter(([, , kind]) => kind === 'd').map(([offset, length]) => ({ offset, end: offset + length }));
  }

  /**
   * Slots in increasing order, at most WINDOW_SLOTS of them, into the buffer the read before the
   * last one used. A read may go back (a window read again after a break).
   */
  read(slots: readonly number[]): Promise<NamedChunk[]> {
    const buffer = this.windowBuffer(slots.length);
    if (slots.length > 0 && (slots[0] as number) < this.lastSlot) this.cursor = 0;
    this.lastSlot = slots[slots.length - 1] ?? this.lastSlot;
    return Promise.all(slots.map((slot, i) => this.chunk(slot, this.piecesOf(slot), buffer.subarray(i * NAMED_CHUNK_BYTES, (i + 1) * NAMED_CHUNK_BYTES))));
  }

  private windowBuffer(slots: number): Buffer {
    this.turn = 1 - this.turn;
    if ((this.buffers[this.turn] as Buffer).length < slots * NAMED_CHUNK_BYTES) this.buffers[this.turn] = Buffer.allocUnsafe(WINDOW_SLOTS * NAMED_CHUNK_BYTES);
    return this.buffers[this.turn] as Buffer;
  }

  private piecesOf(slot: number): { offset: number; end: number }[] {
    const start = slot * NAMED_CHUNK_BYTES;
    const end = start + slotLength(slot, this.layout.map.virtualSize);
    while (this.cursor < this.data.length && (this.data[this.cursor] as { end: number }).end <= start) this.cursor++;
    const out: { offset: number; end: number }[] = [];
    for (let i = this.cursor; i < this.data.length && (this.data[i] as { offset: number }).offset < end; i++) {
      const d = this.data[i] as { offset: number; end: number };
      out.push({ offset: Math.max(d.offset, start), end: Math.min(d.end, end) });
    }
    return out;
  }

  private async chunk(slot: number, pieces: readonly { offset: number; end: number }[], room: Buffer): Promise<NamedChunk> {
    const start = slot * NAMED_CHUNK_BYTES;
    const bytes = room.subarray(0, slotLength(slot, this.layout.map.virtualSize));
    const data = pieces.reduce((n, p) => n + (p.end - p.offset), 0);
    // Only a chunk the data does not cover whole reads zeros between its pieces.
    if (data < bytes.length) bytes.fill(0);
    await Promise.all(pieces.map((p) => this.nbd.readInto(bytes.subarray(p.offset - start, p.end - start), p.offset)));
    // A chunk of zeros is named by zeros: neither stored nor sent (the disk reads zeros there anyway).
    if (bytes.equals(ZEROS.subarray(0, bytes.length))) return { slot, name: ZERO_CHUNK_NAME, bytes: null, data };
    return { slot, name: createHash('sha256').update(bytes).digest(), bytes, data };
  }
}
