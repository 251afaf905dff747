// The byte level of the handshake: the handshake is strictly call and answer, so it reads exact
// counts in sequence under one deadline. Every length the server declares is checked against a cap
// before a byte of its payload is buffered.
import type net from 'node:net';
import { ByteQueue } from './byte-queue';
import { NbdConnectionError, NbdProtocolError, NbdTimeoutError } from './errors';
import { NBD_MAX_STRING, NBD_OPTS_MAGIC, NBD_REP_MAGIC, OPTION_REPLY_HEADER_BYTES, optionName } from './protocol';

/**
 * The largest option reply payload accepted. The largest legal one is an NBD_REP_META_CONTEXT
 * (4-byte id + a 4096-byte name); the slack is for servers with chatty error messages.
 */
export const MAX_OPTION_REPLY_PAYLOAD = 2 * NBD_MAX_STRING;

export interface OptionReply {
  type: number;
  payload: Buffer;
}

export function encodeOption(option: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.allocUnsafe(16);
  header.writeBigUInt64BE(NBD_OPTS_MAGIC, 0);
  header.writeUInt32BE(option, 8);
  header.writeUInt32BE(data.length, 12);
  return data.length > 0 ? Buffer.concat([header, data]) : header;
}

interface Waiter {
  n: number;
  resolve: (b: Buffer) => void;
  reject: (e: Error) => void;
}

export class HandshakeStream {
  private readonly queue = new ByteQueue();
  private waiter: Waiter | null = null;
  private failure: Error | null = null;
  private readonly timer: NodeJS.Timeout;
  private readonly onData = (chunk: Buffer): void => {
    this.queue.push(chunk);
    this.settle();
  };
  private readonly onClose = (): void => this.fail(new NbdConnectionError(`${this.peer} closed the connection during the handshake`));
  private readonly onError = (err: Error): void =>
    this.fail(new NbdConnectionError(`connection to ${this.peer} failed during the handshake: ${err.message}`, { cause: err }));

  constructor(
    readonly socket: net.Socket,
    readonly peer: string,
    timeoutMs: number,
  ) {
    socket.on('data', this.onData);
    socket.on('close', this.onClose);
    socket.on('error', this.onError);
    this.timer = setTimeout(() => {
      this.fail(new NbdTimeoutError(`handshake with ${peer} did not finish within ${timeoutMs} ms`, timeoutMs));
      socket.destroy();
    }, timeoutMs);
  }

  read(n: number): Promise<Buffer> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiter = { n, resolve, reject };
      this.settle();
    });
  }

  write(bytes: Buffer): void {
    if (!this.failure && !this.socket.destroyed) this.socket.write(bytes);
  }

  async readUint64(): Promise<bigint> {
    return (await this.read(8)).readBigUInt64BE(0);
  }

  sendOption(option: number, data?: Buffer): void {
    this.write(encodeOption(option, data));
  }

  /** One option reply; its header must echo the option and declare a payload within the cap. */
  async readOptionReply(option: number): Promise<OptionReply> {
    const h = await this.read(OPTION_REPLY_HEADER_BYTES);
    const magic = h.readBigUInt64BE(0);
    if (magic !== NBD_REP_MAGIC) throw new NbdProtocolError(`option reply magic 0x${magic.toString(16)} from ${this.peer}, expected 0x${NBD_REP_MAGIC.toString(16)}`);
    const echoed = h.readUInt32BE(8);
    if (echoed !== option) throw new NbdProtocolError(`${this.peer} answered ${optionName(echoed)} while ${optionName(option)} was asked`);
    const type = h.readUInt32BE(12);
    const length = h.readUInt32BE(16);
    if (length > MAX_OPTION_REPLY_PAYLOAD) {
      throw new NbdProtocolError(`${this.peer} declared a ${length}-byte reply to ${optionName(option)}; the cap is ${MAX_OPTION_REPLY_PAYLOAD}`);
    }
    const payload = length > 0 ? await this.read(length) : Buffer.alloc(0);
    return { type, payload };
  }

  /** Ends the handshake's hold on the socket; returns bytes that arrived past the last reply. */
  release(): Buffer[] {
    clearTimeout(this.timer);
    this.socket.off('data', this.onData);
    this.socket.off('close', this.onClose);
    this.socket.off('error', this.onError);
    return this.queue.drain();
  }

  /** Fails the pending read and every later one; the caller decides how the socket ends. */
  fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    clearTimeout(this.timer);
    const w = this.waiter;
    this.waiter = null;
    w?.reject(err);
  }

  private settle(): void {
    const w = this.waiter;
    if (!w || this.queue.length < w.n) return;
    this.waiter = null;
    w.resolve(this.queue.take(w.n));
  }
}
