// Transmission-phase framing: 28-byte requests out; simple replies (16 bytes, then read data only
// when structured replies are off) and structured chunks (20-byte header + payload) in. Which bytes
// follow a header depends on the request it answers, so the decoder asks its sink about every
// header before it takes a byte of payload: an unknown cookie or an oversized length fails there,
// before anything is buffered. Read data streams straight into the destination the sink names.
import { ByteQueue } from './byte-queue';
import { NbdProtocolError } from './errors';
import {
  NBD_REPLY_TYPE_OFFSET_DATA,
  NBD_REQUEST_MAGIC,
  NBD_SIMPLE_REPLY_MAGIC,
  NBD_STRUCTURED_REPLY_MAGIC,
  REQUEST_HEADER_BYTES,
  SIMPLE_REPLY_HEADER_BYTES,
  STRUCTURED_REPLY_HEADER_BYTES,
} from './protocol';
import { errorMessage } from '../contract';

export interface Request {
  flags: number;
  command: number;
  cookie: number;
  offset: number;
  length: number;
}

export function encodeRequest(r: Request): Buffer {
  const b = Buffer.allocUnsafe(REQUEST_HEADER_BYTES);
  b.writeUInt32BE(NBD_REQUEST_MAGIC, 0);
  b.writeUInt16BE(r.flags, 4);
  b.writeUInt16BE(r.command, 6);
  writeUint64(b, 8, r.cookie);
  writeUint64(b, 16, r.offset);
  b.writeUInt32BE(r.length, 24);
  return b;
}

export interface ChunkHeader {
  flags: number;
  type: number;
  cookie: number;
  length: number;
}

/** What the decoder needs from the request side. Each method throws NbdProtocolError to refuse. */
export interface ReplySink {
  /** A simple reply header: returns the buffer its read data fills, or null when none follows. */
  simpleReply(cookie: number, error: number): Buffer | null;
  /** The simple reply (and its data, if any) is complete. */
  simpleReplyDone(cookie: number, error: number): void;
  /** Validates a chunk header, its length above all, before any payload is taken. */
  chunkHeader(h: ChunkHeader): void;
  /** An NBD_REPLY_TYPE_OFFSET_DATA's offset: returns the buffer its data fills (length - 8 bytes). */
  chunkData(h: ChunkHeader, offset: number): Buffer;
  /** A complete chunk; `payload` is empty for OFFSET_DATA, whose bytes went to chunkData's buffer. */
  chunk(h: ChunkHeader, payload: Buffer): void;
}

type State =
  | { kind: 'magic' }
  | { kind: 'simple' }
  | { kind: 'structured' }
  | { kind: 'payload'; header: ChunkHeader }
  | { kind: 'data-offset'; header: ChunkHeader }
  | { kind: 'data'; dest: Buffer; filled: number; done: () => void };

const EMPTY = Buffer.alloc(0);

export class ReplyDecoder {
  private readonly queue = new ByteQueue();
  private state: State = { kind: 'magic' };
  private failed: NbdProtocolError | null = null;

  constructor(private readonly sink: ReplySink) {}

  /** True when the stream stopped between messages (a close here is clean). */
  get atBoundary(): boolean {
    return this.state.kind === 'magic' && this.queue.length === 0;
  }

  push(chunk: Buffer): void {
    if (this.failed) throw this.failed;
    this.queue.push(chunk);
    try {
      while (this.step());
    } catch (e) {
      this.failed = e instanceof NbdProtocolError ? e : new NbdProtocolError(errorMessage(e));
      this.queue.drain();
      throw this.failed;
    }
  }

  /** Advances one state; false when more bytes are needed. */
  private step(): boolean {
    const s = this.state;
    const q = this.queue;
    switch (s.kind) {
      case 'magic': {
        if (q.length < 4) return false;
        const magic = q.take(4).readUInt32BE(0);
        if (magic === NBD_SIMPLE_REPLY_MAGIC) this.state = { kind: 'simple' };
        else if (magic === NBD_STRUCTURED_REPLY_MAGIC) this.state = { kind: 'structured' };
        else throw new NbdProtocolError(`reply magic 0x${magic.toString(16)} is neither a simple reply nor a structured chunk`);
        return true;
      }
      case 'simple': {
        if (q.length < SIMPLE_REPLY_HEADER_BYTES - 4) return false;
        const h = q.take(SIMPLE_REPLY_HEADER_BYTES - 4);
        const error = h.readUInt32BE(0);
        const cookie = readUint64(h, 4);
        const dest = this.sink.simpleReply(cookie, error);
        this.expectData(dest ?? EMPTY, () => this.sink.simpleReplyDone(cookie, error));
        return true;
      }
      case 'structured': {
        if (q.length < STRUCTURED_REPLY_HEADER_BYTES - 4) return false;
        const b = q.take(STRUCTURED_REPLY_HEADER_BYTES - 4);
        const header: ChunkHeader = { flags: b.readUInt16BE(0), type: b.readUInt16BE(2), cookie: readUint64(b, 4), length: b.readUInt32BE(12) };
        this.sink.chunkHeader(header);
        this.state = header.type === NBD_REPLY_TYPE_OFFSET_DATA ? { kind: 'data-offset', header } : { kind: 'payload', header };
        return true;
      }
      case 'payload': {
        if (q.length < s.header.length) return false;
        const payload = s.header.length > 0 ? q.take(s.header.length) : EMPTY;
        this.state = { kind: 'magic' };
        this.sink.chunk(s.header, payload);
        return true;
      }
      case 'data-offset': {
        if (q.length < 8) return false;
        const offset = readUint64(q.take(8), 0);
        const dest = this.sink.chunkData(s.header, offset);
        if (dest.length !== s.header.length - 8) throw new RangeError(`data buffer of ${dest.length} bytes for a ${s.header.length - 8}-byte chunk`);
        const header = s.header;
        this.expectData(dest, () => this.sink.chunk(header, EMPTY));
        return true;
      }
      case 'data': {
        if (q.length === 0 && s.filled < s.dest.length) return false;
        s.filled += q.takeInto(s.dest, s.filled, s.dest.length - s.filled);
        if (s.filled < s.dest.length) return false;
        this.state = { kind: 'magic' };
        s.done();
        return true;
      }
    }
  }

  private expectData(dest: Buffer, done: () => void): void {
    this.state = { kind: 'data', dest, filled: 0, done };
  }
}

/** Cookies and offsets are 64-bit; beyond 2^53 they cannot match anything this client sent. */
function readUint64(b: Buffer, at: number): number {
  return b.readUInt32BE(at) * 0x1_0000_0000 + b.readUInt32BE(at + 4);
}

function writeUint64(b: Buffer, at: number, n: number): void {
  b.writeUInt32BE(Math.floor(n / 0x1_0000_0000), at);
  b.writeUInt32BE(n >>> 0, at + 4);
}
