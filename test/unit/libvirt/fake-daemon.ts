// A scripted libvirtd stand-in on a unix socket: answers the connect handshake, then hands every
// other call to the test, which can reply, stay silent, close, or write arbitrary bytes.
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { FrameDecoder, MessageStatus, MessageType, encodePacket, type Header, type Packet } from '../../../src/libvirt/frame';
import { KEEPALIVE_PROGRAM, Procedure, REMOTE_PROGRAM } from '../../../src/libvirt/protocol';
import type { XdrWriter } from '../../../src/libvirt/xdr';

export interface PeerConn {
  socket: net.Socket;
  reply(call: Header, write?: (w: XdrWriter) => void): void;
  replyError(call: Header, write: (w: XdrWriter) => void): void;
  raw(bytes: Buffer): void;
  /** Keepalive messages received from the client. */
  keepalives: number[];
}

export type CallHandler = (conn: PeerConn, packet: Packet) => void;

export interface FakeDaemon {
  socketPath: string;
  connections: PeerConn[];
  close(): Promise<void>;
}

export async function startFakeDaemon(onCall: CallHandler, opts: { keepalive?: boolean } = {}): Promise<FakeDaemon> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fake-libvirtd-'));
  const socketPath = path.join(dir, 'sock');
  const connections: PeerConn[] = [];
  const server = net.createServer((socket) => {
    const decoder = new FrameDecoder();
    const send = (call: Header, status: MessageStatus, write?: (w: XdrWriter) => void): void => {
      if (!socket.destroyed) socket.write(encodePacket({ ...call, type: MessageType.Reply, status }, write));
    };
    const conn: PeerConn = {
      socket,
      reply: (call, write) => send(call, MessageStatus.Ok, write),
      replyError: (call, write) => send(call, MessageStatus.Error, write),
      raw: (bytes) => socket.write(bytes),
      keepalives: [],
    };
    connections.push(conn);
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      let packets: Packet[];
      try {
        packets = decoder.push(chunk);
      } catch {
        socket.destroy();
        return;
      }
      for (const p of packets) {
        if (p.header.program === KEEPALIVE_PROGRAM) {
          conn.keepalives.push(p.header.procedure);
          continue;
        }
        if (p.header.program !== REMOTE_PROGRAM) {
          onCall(conn, p); // other programs (libvirt-qemu) have no handshake part: all go to the test
          continue;
        }
        switch (p.header.procedure) {
          case Procedure.AuthList:
            conn.reply(p.header, (w) => w.uint32(0));
            break;
          case Procedure.ConnectOpen:
          case Procedure.ConnectClose:
            conn.reply(p.header);
            break;
          case Procedure.ConnectSupportsFeature:
            conn.reply(p.header, (w) => w.int32(opts.keepalive ? 1 : 0));
            break;
          default:
            onCall(conn, p);
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return {
    socketPath,
    connections,
    async close() {
      for (const c of connections) c.socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
