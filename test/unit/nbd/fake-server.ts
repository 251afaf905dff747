// A scripted NBD server on a unix socket. Each connection runs the test's script, which can follow
// the protocol (standardHandshake, serve) or write whatever bytes it likes. Its encoders are written
// apart from src/nbd on purpose, so a misreading of the spec is not mirrored on both sides.
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const INIT_MAGIC = Buffer.from('NBDMAGIC', 'ascii');
export const IHAVEOPT = Buffer.from('IHAVEOPT', 'ascii');
export const REP_MAGIC = 0x3e889045565a9n;
export const REQUEST_MAGIC = 0x25609513;
export const SIMPLE_MAGIC = 0x67446698;
export const CHUNK_MAGIC = 0x668e33ef;

export const OPT = { exportName: 1, abort: 2, go: 7, structuredReply: 8, setMetaContext: 10 } as const;
export const REP = { ack: 1, info: 3, metaContext: 4, errUnsup: 0x80000001 } as const;
export const CMD = { read: 0, disc: 2, blockStatus: 7 } as const;
export const CHUNK = { none: 0, data: 1, hole: 2, blockStatus: 5, error: 0x8001, errorOffset: 0x8002 } as const;
export const DONE = 1;

export interface NbdRequest {
  flags: number;
  command: number;
  cookie: bigint;
  offset: number;
  length: number;
}

export class Peer {
  private buffered = Buffer.alloc(0);
  private wake: (() => void) | null = null;
  ended = false;
  readonly requests: NbdRequest[] = [];

  constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, d]);
      this.wake?.();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake?.();
    });
    socket.on('error', () => undefined);
  }

  async read(n: number): Promise<Buffer> {
    while (this.buffered.length < n) {
      if (this.ended) throw new Error(`peer closed with ${this.buffered.length} of ${n} bytes`);
      await new Promise<void>((r) => (this.wake = r));
      this.wake = null;
    }
    const out = this.buffered.subarray(0, n);
    this.buffered = this.buffered.subarray(n);
    return out;
  }

  write(...parts: Buffer[]): void {
    if (!this.socket.destroyed) this.socket.write(Buffer.concat(parts));
  }

  greet(flags = 0b11): void {
    this.write(INIT_MAGIC, IHAVEOPT, u16(flags));
  }

  async readClientFlags(): Promise<number> {
    return (await this.read(4)).readUInt32BE(0);
  }

  async readOption(): Promise<{ option: number; data: Buffer }> {
    const h = await this.read(16);
    if (!h.subarray(0, 8).equals(IHAVEOPT)) throw new Error('option without IHAVEOPT');
    const option = h.readUInt32BE(8);
    const data = await this.read(h.readUInt32BE(12));
    return { option, data };
  }

  optionReply(option: number, type: number, payload: Buffer = Buffer.alloc(0), declaredLength = payload.length): void {
    const h = Buffer.alloc(20);
    h.writeBigUInt64BE(REP_MAGIC, 0);
    h.writeUInt32BE(option, 8);
    h.writeUInt32BE(type >>> 0, 12);
    h.writeUInt32BE(declaredLength >>> 0, 16);
    this.write(h, payload);
  }

  async readRequest(): Promise<NbdRequest> {
    const h = await this.read(28);
    if (h.readUInt32BE(0) !== REQUEST_MAGIC) throw new Error('bad request magic');
    const req = { flags: h.readUInt16BE(4), command: h.readUInt16BE(6), cookie: h.readBigUInt64BE(8), offset: Number(h.readBigUInt64BE(16)), length: h.readUInt32BE(24) };
    this.requests.push(req);
    return req;
  }

  simpleReply(cookie: bigint, error: number, data?: Buffer): void {
    const h = Buffer.alloc(16);
    h.writeUInt32BE(SIMPLE_MAGIC, 0);
    h.writeUInt32BE(error, 4);
    h.writeBigUInt64BE(cookie, 8);
    this.write(h, data ?? Buffer.alloc(0));
  }

  chunk(cookie: bigint, flags: number, type: number, payload: Buffer = Buffer.alloc(0), declaredLength = payload.length): void {
    const h = Buffer.alloc(20);
    h.writeUInt32BE(CHUNK_MAGIC, 0);
    h.writeUInt16BE(flags, 4);
    h.writeUInt16BE(type, 6);
    h.writeBigUInt64BE(cookie, 8);
    h.writeUInt32BE(declaredLength >>> 0, 16);
    this.write(h, payload);
  }

  dataChunk(cookie: bigint, offset: number, data: Buffer, flags = 0): void {
    this.chunk(cookie, flags, CHUNK.data, Buffer.concat([u64(offset), data]));
  }

  holeChunk(cookie: bigint, offset: number, size: number, flags = 0): void {
    this.chunk(cookie, flags, CHUNK.hole, Buffer.concat([u64(offset), u32(size)]));
  }

  blockStatusChunk(cookie: bigint, contextId: number, extents: Array<[number, number]>, flags = 0): void {
    this.chunk(cookie, flags, CHUNK.blockStatus, Buffer.concat([u32(contextId), ...extents.flatMap(([len, f]) => [u32(len), u32(f)])]));
  }

  errorChunk(cookie: bigint, code: number, message: string, flags = DONE): void {
    const m = Buffer.from(message);
    this.chunk(cookie, flags, CHUNK.error, Buffer.concat([u32(code), u16(m.length), m]));
  }

  done(cookie: bigint): void {
    this.chunk(cookie, DONE, CHUNK.none);
  }
}

export interface HandshakeScript {
  size?: number;
  transmissionFlags?: number;
  structured?: boolean;
  /** context name → id to grant when asked; others are silently not selected */
  contexts?: Record<string, number>;
  /** [minimum, preferred, maximum], or null for no NBD_INFO_BLOCK_SIZE */
  blockSize?: [number, number, number] | null;
}

/** A well-behaved negotiation up to NBD_OPT_GO's ACK; returns the client flags and options seen. */
export async function standardHandshake(peer: Peer, s: HandshakeScript = {}): Promise<{ clientFlags: number; options: number[] }> {
  peer.greet();
  const clientFlags = await peer.readClientFlags();
  const options: number[] = [];
  for (;;) {
    const { option, data } = await peer.readOption();
    options.push(option);
    if (option === OPT.structuredReply) {
      peer.optionReply(option, s.structured === false ? REP.errUnsup : REP.ack);
    } else if (option === OPT.setMetaContext) {
      for (const q of parseQueries(data)) {
        const id = s.contexts?.[q];
        if (id !== undefined) peer.optionReply(option, REP.metaContext, Buffer.concat([u32(id), Buffer.from(q)]));
      }
      peer.optionReply(option, REP.ack);
    } else if (option === OPT.go) {
      const info = Buffer.alloc(12);
      info.writeUInt16BE(0, 0);
      info.writeBigUInt64BE(BigInt(s.size ?? 1024 * 1024), 2);
      info.writeUInt16BE(s.transmissionFlags ?? 0b11, 10);
      peer.optionReply(option, REP.info, info);
      const bs: [number, number, number] | null = s.blockSize === undefined ? [1, 4096, 32 * 1024 * 1024] : s.blockSize;
      if (bs) peer.optionReply(option, REP.info, Buffer.concat([u16(3), u32(bs[0]), u32(bs[1]), u32(bs[2])]));
      peer.optionReply(option, REP.ack);
      return { clientFlags, options };
    } else {
      peer.optionReply(option, REP.errUnsup);
    }
  }
}

/** Answers requests with `handler` until the client disconnects; records every request. */
export async function serve(peer: Peer, handler: (req: NbdRequest) => void | Promise<void>): Promise<void> {
  for (;;) {
    let req: NbdRequest;
    try {
      req = await peer.readRequest();
    } catch {
      return;
    }
    if (req.command === CMD.disc) {
      peer.socket.end();
      return;
    }
    await handler(req);
  }
}

function parseQueries(data: Buffer): string[] {
  let at = 4 + data.readUInt32BE(0);
  const n = data.readUInt32BE(at);
  at += 4;
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const len = data.readUInt32BE(at);
    out.push(data.toString('utf8', at + 4, at + 4 + len));
    at += 4 + len;
  }
  return out;
}

export interface FakeServer {
  socketPath: string;
  /** the TCP port, when started with { tcp: true } */
  port: number;
  peers: Peer[];
  /** rejections of the scripts (a script that throws is a test failure to report) */
  scriptErrors: unknown[];
  close(): Promise<void>;
}

export async function startFakeServer(script: (peer: Peer) => Promise<unknown>, opts: { tcp?: boolean } = {}): Promise<FakeServer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fake-nbd-'));
  const socketPath = path.join(dir, 'nbd.sock');
  const peers: Peer[] = [];
  const scriptErrors: unknown[] = [];
  const server = net.createServer((socket) => {
    const peer = new Peer(socket);
    peers.push(peer);
    script(peer).catch((e: unknown) => {
      if (!peer.ended) scriptErrors.push(e);
    });
  });
  if (opts.tcp) await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  else await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  const address = server.address();
  return {
    socketPath,
    port: typeof address === 'object' && address ? address.port : 0,
    peers,
    scriptErrors,
    async close() {
      for (const p of peers) p.socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

export function u64(n: number | bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

/** Records the largest Buffer allocation made through Buffer's allocators while `fn` runs. */
export async function largestAllocation(fn: () => Promise<unknown>): Promise<number> {
  let largest = 0;
  const spies = (['alloc', 'allocUnsafe', 'allocUnsafeSlow'] as const).map((name) => {
    const original = Buffer[name].bind(Buffer) as (size: number, ...rest: never[]) => Buffer;
    return jest.spyOn(Buffer, name).mockImplementation(((size: number, ...rest: never[]) => {
      largest = Math.max(largest, size);
      return original(size, ...rest);
    }) as never);
  });
  try {
    await fn();
  } finally {
    for (const s of spies) s.mockRestore();
  }
  return largest;
}

export interface DiskModel {
  image: Buffer;
  /** [offset, length, flags] of base:allocation, covering the image in order */
  allocation?: Array<[number, number, number]>;
  allocationId?: number;
  /** most descriptors per block-status reply, to exercise short answers */
  maxExtentsPerReply?: number;
  /** send all-zero regions of a read as hole chunks */
  holes?: boolean;
}

/** A well-behaved structured-reply server over an in-memory disk. */
export function diskHandler(peer: Peer, d: DiskModel): (req: NbdRequest) => void {
  return (req) => {
    if (req.command === CMD.read) {
      const data = d.image.subarray(req.offset, req.offset + req.length);
      if (d.holes && data.every((b) => b === 0)) peer.holeChunk(req.cookie, req.offset, req.length, DONE);
      else peer.dataChunk(req.cookie, req.offset, data, DONE);
      return;
    }
    if (req.command === CMD.blockStatus) {
      const out: Array<[number, number]> = [];
      const end = req.offset + req.length;
      for (const [off, len, flags] of d.allocation ?? []) {
        if (off + len <= req.offset || off >= end) continue;
        const s = Math.max(off, req.offset);
        out.push([off + len - s, flags]); // the last may reach past the request, as servers may
        if (out.length === (d.maxExtentsPerReply ?? Infinity)) break;
      }
      peer.blockStatusChunk(req.cookie, d.allocationId ?? 1, out, DONE);
      return;
    }
    peer.simpleReply(req.cookie, 22);
  };
}
