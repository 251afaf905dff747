// The public client: connect and negotiate, then read bytes and block status of one export. Reads
// are split to the server's maximum payload and the request cap, aligned to its minimum block, and
// sent concurrently within the connection's in-flight bounds.
import { NbdConnectionError, NbdProtocolError, NbdUsageError } from './errors';
import { negotiate, type BlockSize, type NegotiatedExport } from './handshake';
import { encodeOption, HandshakeStream } from './handshake-io';
import { NbdConnectOptionsSchema, type NbdConnectOptions, type ResolvedConnectOptions } from './options';
import { NBD_CMD_FLAG_REQ_ONE, NBD_FLAG_CAN_MULTI_CONN, NBD_FLAG_READ_ONLY, NBD_MAX_REQUEST_LENGTH, NbdOption } from './protocol';
import { BlockStatusAssembler, ReadAssembler, type Extent } from './replies';
import { NbdConnection } from './rpc';
import { describeTarget, openTransport, type NbdTarget } from './transport';

export interface BlockStatusOptions {
  /** NBD_CMD_FLAG_REQ_ONE: one extent per context, never longer than asked */
  reqOne?: boolean;
}

export class NbdClient {
  readonly exportName: string;
  /** bytes */
  readonly exportSize: number;
  readonly blockSize: Readonly<BlockSize>;
  readonly transmissionFlags: number;
  readonly structuredReplies: boolean;
  /** metadata context name → the id the server assigned */
  readonly contexts: ReadonlyMap<string, number>;
  private readonly contextsById: ReadonlyMap<number, string>;
  /** the largest request this client sends: a multiple of the minimum (and if it can, the preferred) block */
  readonly maxRequestLength: number;

  private constructor(
    private readonly conn: NbdConnection,
    negotiated: NegotiatedExport,
    private readonly options: ResolvedConnectOptions,
  ) {
    this.exportName = negotiated.exportName;
    this.exportSize = negotiated.size;
    this.blockSize = Object.freeze({ ...negotiated.blockSize });
    this.transmissionFlags = negotiated.transmissionFlags;
    this.structuredReplies = negotiated.structuredReplies;
    this.contexts = negotiated.contexts;
    this.contextsById = new Map([...negotiated.contexts].map(([name, id]) => [id, name]));
    this.maxRequestLength = requestLength(negotiated.blockSize, options.maxRequestBytes);
  }

  static async connect(options: NbdConnectOptions): Promise<NbdClient> {
    const checked = NbdConnectOptionsSchema.safeParse(options);
    if (!checked.success) throw new NbdUsageError(`invalid NBD connect options: ${checked.error.issues.map((i) => `${i.path.join('.') || 'options'}: ${i.message}`).join('; ')}`);
    const opts = checked.data;
    const target: NbdTarget = opts.socketPath !== undefined ? { kind: 'unix', path: opts.socketPath } : { kind: 'tcp', host: opts.host as string, port: opts.port as number };
    const peer = describeTarget(target);
    const started = Date.now();
    const socket = await openTransport(target, opts.connectTimeoutMs);
    const stream = new HandshakeStream(socket, peer, Math.max(1, opts.connectTimeoutMs - (Date.now() - started)));
    let negotiated: NegotiatedExport;
    try {
      negotiated = await negotiate(stream, { exportName: opts.exportName, metaContexts: opts.metaContexts });
    } catch (e) {
      stream.fail(e instanceof Error ? e : new Error(String(e)));
      stream.release();
      socket.on('error', () => undefined); // the socket is being abandoned; its late errors are noise
      // A refused option leaves the server in a sane state: tell it we are leaving (soft
      // disconnect). After a protocol breach or a lost connection there is nobody sane to tell.
      if (e instanceof NbdConnectionError || e instanceof NbdProtocolError || socket.destroyed) socket.destroy();
      else {
        socket.end(encodeOption(NbdOption.Abort));
        setTimeout(() => socket.destroy(), 1_000).unref();
      }
      throw e;
    }
    const leftovers = stream.release();
    const conn = new NbdConnection(socket, negotiated.structuredReplies, opts, peer, leftovers);
    return new NbdClient(conn, negotiated, opts);
  }

  get readOnly(): boolean {
    return (this.transmissionFlags & NBD_FLAG_READ_ONLY) !== 0;
  }

  /** The server says several connections to this export see the same data. */
  get canMultiConn(): boolean {
    return (this.transmissionFlags & NBD_FLAG_CAN_MULTI_CONN) !== 0;
  }

  get closed(): boolean {
    return this.conn.closed;
  }

  /** Requests outstanding or waiting for a slot. */
  get inFlight(): number {
    return this.conn.inFlight;
  }

  onClose(cb: (err: Error) => void): void {
    this.conn.onClose(cb);
  }

  /** Reads `length` bytes at `offset`; holes come back as zeros. */
  async read(offset: number, length: number): Promise<Buffer> {
    this.checkRange('read', offset, length);
    if (length > this.options.maxReadBytes) throw new NbdUsageError(`read of ${length} bytes exceeds maxReadBytes (${this.options.maxReadBytes})`);
    const dest = Buffer.allocUnsafe(length);
    await this.readInto(dest, offset);
    return dest;
  }

  /** Fills `dest` from the export at `offset`: for callers that reuse their buffers. */
  async readInto(dest: Buffer, offset: number): Promise<void> {
    this.checkRange('read', offset, dest.length);
    if (dest.length === 0) return;
    const { start, end } = this.align(offset, dest.length);
    if (start === offset && end === offset + dest.length) {
      await this.readAligned(dest, offset);
      return;
    }
    const wide = Buffer.allocUnsafe(end - start);
    await this.readAligned(wide, start);
    wide.copy(dest, 0, offset - start, offset - start + dest.length);
  }

  /** Extents of one selected context over [offset, offset + length), clipped to that range. */
  async blockStatus(context: string, offset: number, length: number, opts: BlockStatusOptions = {}): Promise<Extent[]> {
    if (!this.contexts.has(context)) {
      throw new NbdUsageError(`metadata context '${context}' was not negotiated (selected: ${[...this.contexts.keys()].join(', ') || 'none'})`);
    }
    this.checkRange('block status', offset, length);
    if (length === 0) return [];
    const { start, end } = this.align(offset, length);
    const span = Math.min(end - start, alignDown(NBD_MAX_REQUEST_LENGTH, this.blockSize.minimum));
    const assembler = new BlockStatusAssembler(start, span, this.contextsById, this.options.maxBlockStatusDescriptors, opts.reqOne === true);
    const results = await this.conn.submit(assembler, opts.reqOne ? NBD_CMD_FLAG_REQ_ONE : 0);
    const extents = results.get(context) ?? [];
    return clip(extents, offset, offset + length);
  }

  /** Waits for outstanding requests, sends NBD_CMD_DISC and closes the socket. */
  close(): Promise<void> {
    return this.conn.close(this.options.closeTimeoutMs);
  }

  /** Drops the connection now; outstanding requests fail with NbdConnectionError. */
  destroy(): void {
    this.conn.destroy();
  }

  private async readAligned(dest: Buffer, offset: number): Promise<void> {
    const pieces: Promise<void>[] = [];
    for (let at = 0; at < dest.length; at += this.maxRequestLength) {
      const piece = dest.subarray(at, Math.min(dest.length, at + this.maxRequestLength));
      pieces.push(this.conn.submit(new ReadAssembler(offset + at, piece)));
    }
    await Promise.all(pieces);
  }

  private checkRange(what: string, offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
      throw new NbdUsageError(`${what} needs a non-negative integer offset and length (got ${offset}, ${length})`);
    }
    if (offset + length > this.exportSize) throw new NbdUsageError(`${what} of ${length} bytes at ${offset} runs past the end of the ${this.exportSize}-byte export`);
  }

  /** The spec obliges requests aligned to the minimum block; unaligned asks are widened. */
  private align(offset: number, length: number): { start: number; end: number } {
    const min = this.blockSize.minimum;
    const start = alignDown(offset, min);
    // An export whose size is not a multiple of the minimum block ends on a short request.
    const end = Math.min(alignDown(offset + length + min - 1, min), this.exportSize);
    return { start, end };
  }
}

function requestLength(bs: BlockSize, cap: number): number {
  const limit = Math.min(bs.maximum, cap);
  const preferred = alignDown(limit, bs.preferred);
  if (preferred > 0) return preferred;
  const minimum = alignDown(limit, bs.minimum);
  // A maximum below the minimum block cannot be honoured; one minimum block is the least we can send.
  return minimum > 0 ? minimum : bs.minimum;
}

function alignDown(n: number, to: number): number {
  return n - (n % to);
}

function clip(extents: Extent[], start: number, end: number): Extent[] {
  const out: Extent[] = [];
  for (const e of extents) {
    const s = Math.max(e.offset, start);
    const t = Math.min(e.offset + e.length, end);
    if (t > s) out.push({ offset: s, length: t - s, flags: e.flags });
  }
  return out;
}
