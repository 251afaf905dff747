// Opens the byte stream to the daemon. Only establishment lives here; liveness of an open
// connection is the RPC layer's job (keepalive), because a silent peer looks healthy to a socket.
import net from 'node:net';
import { LibvirtConnectionError } from './errors';

export type TransportTarget = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

export function describeTarget(t: TransportTarget): string {
  return t.kind === 'unix' ? `unix:${t.path}` : `tcp:${t.host}:${t.port}`;
}

export function openTransport(target: TransportTarget, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = target.kind === 'unix' ? net.createConnection({ path: target.path }) : net.createConnection({ host: target.host, port: target.port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new LibvirtConnectionError(`connecting to ${describeTarget(target)} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    const onError = (err: Error): void => {
      clearTimeout(timer);
      reject(new LibvirtConnectionError(`cannot connect to ${describeTarget(target)}: ${err.message}`, { cause: err }));
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      socket.setNoDelay(true);
      if (target.kind === 'tcp') socket.setKeepAlive(true, 10_000);
      resolve(socket);
    });
  });
}
