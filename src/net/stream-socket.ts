// Opening a byte stream to a local daemon or server (libvirt, an NBD export): a unix socket or TCP,
// with a connect deadline, Nagle off (a small request header must not wait for an ACK) and TCP
// keepalive. Each protocol client wraps the failure into its own typed error.
import net from 'node:net';

export type StreamTarget = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

export class StreamConnectFailed extends Error {
  override readonly name = 'StreamConnectFailed';
  constructor(
    message: string,
    readonly timedOut: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function describeStreamTarget(t: StreamTarget): string {
  return t.kind === 'unix' ? `unix:${t.path}` : `tcp:${t.host}:${t.port}`;
}

export function connectStream(target: StreamTarget, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = target.kind === 'unix' ? net.createConnection({ path: target.path }) : net.createConnection({ host: target.host, port: target.port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new StreamConnectFailed(`connecting to ${describeStreamTarget(target)} timed out after ${timeoutMs} ms`, true));
    }, timeoutMs);
    const onError = (err: Error): void => {
      clearTimeout(timer);
      reject(new StreamConnectFailed(`cannot connect to ${describeStreamTarget(target)}: ${err.message}`, false, { cause: err }));
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
