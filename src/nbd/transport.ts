// Opens the byte stream to the NBD server: a unix socket (libvirt's pull-mode backup export,
// `qemu-nbd --socket`) or TCP. Only establishment lives here; the handshake and transmission layers
// own the stream once it is open.
import net from 'node:net';
import { NbdConnectionError, NbdTimeoutError } from './errors';

export type NbdTarget = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

export function describeTarget(t: NbdTarget): string {
  return t.kind === 'unix' ? `unix:${t.path}` : `tcp:${t.host}:${t.port}`;
}

export function openTransport(target: NbdTarget, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = target.kind === 'unix' ? net.createConnection({ path: target.path }) : net.createConnection({ host: target.host, port: target.port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new NbdTimeoutError(`connecting to ${describeTarget(target)} timed out after ${timeoutMs} ms`, timeoutMs));
    }, timeoutMs);
    const onError = (err: Error): void => {
      clearTimeout(timer);
      reject(new NbdConnectionError(`cannot connect to ${describeTarget(target)}: ${err.message}`, { cause: err }));
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      // The spec asks both ends to disable Nagle: a request header waiting for an ACK stalls reads.
      socket.setNoDelay(true);
      if (target.kind === 'tcp') socket.setKeepAlive(true, 10_000);
      resolve(socket);
    });
  });
}
