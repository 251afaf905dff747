// One libvirt RPC connection: many calls in flight, matched to replies by serial. A call names its
// program (REMOTE unless said otherwise) and its reply must come back under that program. Every
// call has a deadline, and keepalive turns a silent peer into a typed error, so nothing awaits forever.
import type net from 'node:net';
import { LibvirtConnectionError, LibvirtError, LibvirtProtocolError, LibvirtTimeoutError } from './errors';
import { FrameDecoder, MessageStatus, MessageType, encodePacket, type Packet } from './frame';
import { CALLABLE_PROGRAMS, KEEPALIVE_PROGRAM, KEEPALIVE_PROTOCOL_VERSION, KeepaliveProcedure, REMOTE_RPC, type RpcProgram } from './protocol';
import { readRemoteError } from './types';
import { XdrReader, type XdrWriter } from './xdr';

export interface RpcOptions {
  /** Default deadline for a call, in ms. */
  callTimeoutMs: number;
  /** Send a ping after this long without inbound traffic; 0 disables keepalive. */
  keepaliveIntervalMs: number;
  /** Declare the peer dead after this many intervals of silence. */
  keepaliveCount: number;
}

export interface CallOptions {
  timeoutMs?: number;
}

export type EventListener = (procedure: number, payload: Buffer) => void;

interface Pending {
  program: RpcProgram;
  procedure: number;
  timer: NodeJS.Timeout;
  resolve: (payload: Buffer) => void;
  reject: (err: Error) => void;
}

export class RpcConnection {
  private readonly decoder = new FrameDecoder();
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Set<EventListener>();
  private serial = 0;
  private closedWith: Error | null = null;
  private lastRx = Date.now();
  private keepaliveTimer: NodeJS.Timeout | null = null;
  private readonly closeCallbacks: Array<(err: Error) => void> = [];

  constructor(
    private readonly socket: net.Socket,
    private readonly options: RpcOptions,
    private readonly peer: string,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail(new LibvirtConnectionError(`connection to ${peer} failed: ${err.message}`, { cause: err })));
    socket.on('close', () => {
      const partial = this.decoder.pending;
      const why = partial > 0 ? `closed mid-frame with ${partial} bytes of a truncated packet` : 'closed by peer';
      this.fail(new LibvirtConnectionError(`connection to ${peer} ${why}`));
    });
  }

  get closed(): boolean {
    return this.closedWith !== null;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  onEvent(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onClose(cb: (err: Error) => void): void {
    this.closeCallbacks.push(cb);
  }

  call(procedure: number, writeArgs?: (w: XdrWriter) => void, options: CallOptions = {}, program: RpcProgram = REMOTE_RPC): Promise<XdrReader> {
    if (this.closedWith) return Promise.reject(new LibvirtConnectionError(`connection to ${this.peer} is closed: ${this.closedWith.message}`, { cause: this.closedWith }));
    this.serial = (this.serial + 1) >>> 0;
    const serial = this.serial;
    let packet: Buffer;
    try {
      packet = encodePacket(
        { program: program.program, version: program.version, procedure, type: MessageType.Call, serial, status: MessageStatus.Ok },
        writeArgs,
      );
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
    const timeoutMs = options.timeoutMs ?? this.options.callTimeoutMs;
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(serial);
        reject(new LibvirtTimeoutError(program.procedureName(procedure), timeoutMs));
      }, timeoutMs);
      this.pending.set(serial, { program, procedure, timer, resolve, reject });
      this.socket.write(packet);
    }).then((payload) => new XdrReader(payload));
  }

  startKeepalive(): void {
    const { keepaliveIntervalMs: interval, keepaliveCount: count } = this.options;
    if (interval <= 0 || this.keepaliveTimer || this.closedWith) return;
    this.keepaliveTimer = setInterval(() => {
      const silentFor = Date.now() - this.lastRx;
      if (silentFor >= interval * count) {
        this.fail(new LibvirtConnectionError(`no data from ${this.peer} for ${silentFor} ms: keepalive timed out, connection presumed lost`));
        this.socket.destroy();
      } else if (silentFor >= interval) {
        this.sendKeepalive(KeepaliveProcedure.Ping);
      }
    }, Math.max(10, Math.floor(interval / 2)));
    this.keepaliveTimer.unref();
  }

  /** Closes the socket; calls still in flight fail with LibvirtConnectionError. */
  close(reason = 'connection closed by client'): void {
    this.fail(new LibvirtConnectionError(reason));
    this.socket.end();
    this.socket.destroy();
  }

  private sendKeepalive(procedure: KeepaliveProcedure): void {
    if (this.closedWith) return;
    this.socket.write(
      encodePacket({ program: KEEPALIVE_PROGRAM, version: KEEPALIVE_PROTOCOL_VERSION, procedure, type: MessageType.Message, serial: 0, status: MessageStatus.Ok }),
    );
  }

  private onData(chunk: Buffer): void {
    if (this.closedWith) return;
    this.lastRx = Date.now();
    let packets: Packet[];
    try {
      packets = this.decoder.push(chunk);
    } catch (e) {
      const err = e instanceof LibvirtProtocolError ? e : new LibvirtProtocolError(String(e));
      this.fail(new LibvirtProtocolError(`malformed data from ${this.peer}: ${err.message}`));
      this.socket.destroy();
      return;
    }
    for (const packet of packets) {
      try {
        this.dispatch(packet);
      } catch (e) {
        this.fail(e instanceof Error ? e : new Error(String(e)));
        this.socket.destroy();
        return;
      }
    }
  }

  private dispatch({ header, payload }: Packet): void {
    if (header.program === KEEPALIVE_PROGRAM) {
      if (header.procedure === KeepaliveProcedure.Ping) this.sendKeepalive(KeepaliveProcedure.Pong);
      return;
    }
    // Checked before the serial lookup, so a stray packet from a program we never call fails the
    // connection even when it carries the serial of a call that already timed out.
    if (!CALLABLE_PROGRAMS.some((p) => p.program === header.program && p.version === header.version)) {
      throw new LibvirtProtocolError(`unexpected program ${describeProgram(header.program, header.version)} from ${this.peer}`);
    }
    if (header.type === MessageType.Message) {
      // Listeners decode REMOTE event procedures; this client registers no events of other programs.
      if (header.program !== REMOTE_RPC.program) return;
      for (const l of this.listeners) l(header.procedure, payload);
      return;
    }
    if (header.type !== MessageType.Reply) return; // streams are not used by this client
    const call = this.pending.get(header.serial);
    if (!call) return; // a reply to a call that already timed out
    if (call.program.program !== header.program || call.program.version !== header.version) {
      throw new LibvirtProtocolError(
        `reply for serial ${header.serial} comes from program ${describeProgram(header.program, header.version)}, ` +
          `but the call went to ${describeProgram(call.program.program, call.program.version)}`,
      );
    }
    if (call.procedure !== header.procedure) {
      throw new LibvirtProtocolError(`reply for serial ${header.serial} names procedure ${header.procedure}, expected ${call.procedure}`);
    }
    this.pending.delete(header.serial);
    clearTimeout(call.timer);
    if (header.status === MessageStatus.Ok) {
      call.resolve(payload);
      return;
    }
    try {
      const r = new XdrReader(payload);
      const fields = readRemoteError(r);
      call.reject(new LibvirtError(fields, call.program.procedureName(call.procedure)));
    } catch (e) {
      call.reject(e instanceof Error ? e : new LibvirtProtocolError(String(e)));
    }
  }

  private fail(err: Error): void {
    if (this.closedWith) return;
    this.closedWith = err;
    if (this.keepaliveTimer) clearInterval(this.keepaliveTimer);
    for (const [serial, call] of this.pending) {
      clearTimeout(call.timer);
      this.pending.delete(serial);
      call.reject(err);
    }
    for (const cb of this.closeCallbacks) cb(err);
  }
}

function describeProgram(program: number, version: number): string {
  return `0x${program.toString(16)} version ${version}`;
}
