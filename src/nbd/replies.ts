// Assembling one request's reply from its chunks, and holding the server to the spec while doing
// so: content within the request and never overlapping, full coverage before success, one
// block-status chunk per selected context. A breach is an NbdProtocolError and costs the connection;
// an error the server reports properly is an NbdError and costs only the request.
import { NbdError, NbdProtocolError } from './errors';
import type { ChunkHeader } from './frame';
import {
  BLOCK_DESCRIPTOR_BYTES,
  commandName,
  NBD_EINVAL,
  NBD_MAX_STRING,
  NBD_REPLY_FLAG_DONE,
  NBD_REPLY_TYPE_BLOCK_STATUS,
  NBD_REPLY_TYPE_ERROR,
  NBD_REPLY_TYPE_ERROR_OFFSET,
  NBD_REPLY_TYPE_FLAG_ERROR,
  NBD_REPLY_TYPE_NONE,
  NBD_REPLY_TYPE_OFFSET_DATA,
  NBD_REPLY_TYPE_OFFSET_HOLE,
  NbdCommand,
} from './protocol';

/** An error chunk: 4-byte error, 2-byte message length, the message, then type-specific fields. */
const ERROR_CHUNK_FIXED = 6;
/** Room for the longest legal message plus trailing fields of error types not known yet. */
const MAX_ERROR_CHUNK = ERROR_CHUNK_FIXED + NBD_MAX_STRING + 64;

export interface Extent {
  offset: number;
  length: number;
  flags: number;
}

export abstract class ReplyAssembler<T> {
  protected error: NbdError | null = null;

  constructor(
    readonly command: number,
    readonly offset: number,
    readonly length: number,
  ) {}

  /** Bytes this request holds in flight, for the connection's byte budget. */
  get bytes(): number {
    return 0;
  }

  /** A simple reply: returns where its read data goes (simple replies only carry data for READ). */
  simpleReply(error: number, structured: boolean): Buffer | null {
    if (error !== 0) {
      this.error = this.nbdError(error);
      return null;
    }
    return this.simpleSuccess(structured);
  }

  checkChunkHeader(h: ChunkHeader): void {
    if (h.type === NBD_REPLY_TYPE_NONE) {
      if (h.length !== 0) throw this.violation(`NBD_REPLY_TYPE_NONE chunk with ${h.length} bytes of payload`);
      if ((h.flags & NBD_REPLY_FLAG_DONE) === 0) throw this.violation('NBD_REPLY_TYPE_NONE chunk without NBD_REPLY_FLAG_DONE');
      return;
    }
    if ((h.type & NBD_REPLY_TYPE_FLAG_ERROR) !== 0) {
      const min = h.type === NBD_REPLY_TYPE_ERROR_OFFSET ? ERROR_CHUNK_FIXED + 8 : ERROR_CHUNK_FIXED;
      if (h.length < min || h.length > MAX_ERROR_CHUNK) throw this.violation(`error chunk type 0x${h.type.toString(16)} of ${h.length} bytes (allowed ${min}..${MAX_ERROR_CHUNK})`);
      return;
    }
    this.checkContentHeader(h);
  }

  dataDestination(h: ChunkHeader, _offset: number): Buffer {
    throw this.violation(`chunk type ${h.type}`);
  }

  chunk(h: ChunkHeader, payload: Buffer): void {
    if (h.type === NBD_REPLY_TYPE_NONE || h.type === NBD_REPLY_TYPE_OFFSET_DATA) return;
    if ((h.type & NBD_REPLY_TYPE_FLAG_ERROR) !== 0) this.errorChunk(h, payload);
    else this.contentChunk(h, payload);
  }

  /** The reply is complete: the result, or the first error the server reported. */
  finish(): T {
    if (this.error) throw this.error;
    return this.success();
  }

  protected abstract simpleSuccess(structured: boolean): Buffer | null;
  protected abstract checkContentHeader(h: ChunkHeader): void;
  protected abstract contentChunk(h: ChunkHeader, payload: Buffer): void;
  protected abstract success(): T;

  protected violation(what: string): NbdProtocolError {
    return new NbdProtocolError(`${what} in reply to ${commandName(this.command)} of ${this.length} bytes at ${this.offset}`);
  }

  protected within(start: number, length: number): boolean {
    return start >= this.offset && start + length <= this.offset + this.length;
  }

  private errorChunk(h: ChunkHeader, p: Buffer): void {
    const code = p.readUInt32BE(0);
    const messageLength = p.readUInt16BE(4);
    const trailer = h.type === NBD_REPLY_TYPE_ERROR_OFFSET ? 8 : 0;
    if (messageLength > p.length - ERROR_CHUNK_FIXED - trailer) throw this.violation(`error chunk message of ${messageLength} bytes in a ${p.length}-byte chunk`);
    if (code === 0 && (h.type === NBD_REPLY_TYPE_ERROR || h.type === NBD_REPLY_TYPE_ERROR_OFFSET)) throw this.violation('error chunk with error value 0');
    const message = messageLength > 0 ? p.toString('utf8', ERROR_CHUNK_FIXED, ERROR_CHUNK_FIXED + messageLength) : undefined;
    let errorOffset: number | undefined;
    if (h.type === NBD_REPLY_TYPE_ERROR_OFFSET) {
      const at = ERROR_CHUNK_FIXED + messageLength;
      errorOffset = p.readUInt32BE(at) * 0x1_0000_0000 + p.readUInt32BE(at + 4);
      if (errorOffset < this.offset || errorOffset >= this.offset + this.length) throw this.violation(`error offset ${errorOffset} outside the request`);
    }
    // The first error wins: later ones are usually consequences of it.
    this.error ??= this.nbdError(code === 0 ? NBD_EINVAL : code, message, errorOffset);
  }

  private nbdError(wireCode: number, serverMessage?: string, errorOffset?: number): NbdError {
    return new NbdError({ command: this.command, offset: this.offset, length: this.length, wireCode, serverMessage, errorOffset });
  }
}

/** NBD_CMD_READ into a caller's buffer, from data chunks, hole chunks or one simple reply. */
export class ReadAssembler extends ReplyAssembler<void> {
  /** Sorted, disjoint [start, end) ranges already delivered, in export offsets. */
  private readonly covered: Array<[number, number]> = [];
  private coveredBytes = 0;

  constructor(
    offset: number,
    private readonly dest: Buffer,
  ) {
    super(NbdCommand.Read, offset, dest.length);
  }

  override get bytes(): number {
    return this.length;
  }

  protected simpleSuccess(structured: boolean): Buffer {
    if (structured) throw this.violation('a simple reply with data (structured replies were negotiated)');
    this.claim(this.offset, this.length);
    return this.dest;
  }

  protected checkContentHeader(h: ChunkHeader): void {
    if (h.type === NBD_REPLY_TYPE_OFFSET_DATA) {
      if (h.length < 9 || h.length > 8 + this.length) throw this.violation(`data chunk of ${h.length} bytes (at most ${8 + this.length})`);
    } else if (h.type === NBD_REPLY_TYPE_OFFSET_HOLE) {
      if (h.length !== 12) throw this.violation(`hole chunk of ${h.length} bytes (must be 12)`);
    } else {
      throw this.violation(`chunk type ${h.type}`);
    }
  }

  override dataDestination(h: ChunkHeader, offset: number): Buffer {
    const length = h.length - 8;
    this.claim(offset, length);
    const at = offset - this.offset;
    return this.dest.subarray(at, at + length);
  }

  protected contentChunk(_h: ChunkHeader, p: Buffer): void {
    const offset = p.readUInt32BE(0) * 0x1_0000_0000 + p.readUInt32BE(4);
    const size = p.readUInt32BE(8);
    if (size === 0) throw this.violation('hole chunk of size 0');
    this.claim(offset, size);
    const at = offset - this.offset;
    this.dest.fill(0, at, at + size);
  }

  protected success(): void {
    if (this.coveredBytes !== this.length) throw this.violation(`success after only ${this.coveredBytes} of ${this.length} bytes`);
  }

  /** Records [offset, offset+length) as delivered; outside the request or overlapping is a breach. */
  private claim(offset: number, length: number): void {
    if (!this.within(offset, length)) throw this.violation(`content for ${length} bytes at ${offset}, outside the request`);
    const end = offset + length;
    const c = this.covered;
    // Chunks nearly always arrive in order, so the search usually ends at the last range.
    let i = c.length;
    while (i > 0 && (c[i - 1] as [number, number])[0] >= end) i--;
    const before = c[i - 1];
    const after = c[i];
    if ((before && before[1] > offset) || (after && after[0] < end)) throw this.violation(`content for ${length} bytes at ${offset} overlaps earlier content`);
    if (before && before[1] === offset) {
      before[1] = end;
      if (after && after[0] === end) {
        before[1] = after[1];
        c.splice(i, 1);
      }
    } else if (after && after[0] === end) {
      after[0] = offset;
    } else {
      c.splice(i, 0, [offset, end]);
    }
    this.coveredBytes += length;
  }
}

/** NBD_CMD_BLOCK_STATUS: one chunk of consecutive extents per selected metadata context. */
export class BlockStatusAssembler extends ReplyAssembler<Map<string, Extent[]>> {
  private readonly results = new Map<string, Extent[]>();

  constructor(
    offset: number,
    length: number,
    private readonly contextsById: ReadonlyMap<number, string>,
    private readonly maxDescriptors: number,
    private readonly reqOne: boolean,
  ) {
    super(NbdCommand.BlockStatus, offset, length);
  }

  protected simpleSuccess(): Buffer | null {
    throw this.violation('a simple reply without error (block status needs a structured reply)');
  }

  protected checkContentHeader(h: ChunkHeader): void {
    if (h.type !== NBD_REPLY_TYPE_BLOCK_STATUS) throw this.violation(`chunk type ${h.type}`);
    const descriptors = (h.length - 4) / BLOCK_DESCRIPTOR_BYTES;
    if (h.length < 4 + BLOCK_DESCRIPTOR_BYTES || !Number.isInteger(descriptors)) throw this.violation(`block-status chunk of ${h.length} bytes (must be 4 + 8n, n > 0)`);
    const max = this.reqOne ? 1 : this.maxDescriptors;
    if (descriptors > max) throw this.violation(`block-status chunk with ${descriptors} descriptors (at most ${max})`);
  }

  protected contentChunk(_h: ChunkHeader, p: Buffer): void {
    const id = p.readUInt32BE(0);
    const context = this.contextsById.get(id);
    if (context === undefined) throw this.violation(`block status for metadata context id ${id}, which was never selected`);
    if (this.results.has(context)) throw this.violation(`a second block-status chunk for '${context}'`);
    const end = this.offset + this.length;
    const extents: Extent[] = [];
    let at = this.offset;
    for (let i = 4; i < p.length; i += BLOCK_DESCRIPTOR_BYTES) {
      const length = p.readUInt32BE(i);
      const flags = p.readUInt32BE(i + 4);
      if (length === 0) throw this.violation(`zero-length extent for '${context}'`);
      // Only the last extent may reach past the request (a server may know more than it was asked).
      if (at >= end) throw this.violation(`extents for '${context}' continue past the end of the request`);
      if (this.reqOne && length > this.length) throw this.violation(`NBD_CMD_FLAG_REQ_ONE extent of ${length} bytes`);
      extents.push({ offset: at, length: Math.min(length, end - at), flags });
      at += length;
    }
    this.results.set(context, extents);
  }

  protected success(): Map<string, Extent[]> {
    for (const context of this.contextsById.values()) {
      if (!this.results.has(context)) throw this.violation(`success without a block-status chunk for '${context}'`);
    }
    return this.results;
  }
}
