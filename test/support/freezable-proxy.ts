// A loopback TCP proxy a test can freeze: while frozen, bytes in both directions are held (the
// sockets stay open), so a client's call is stuck mid-flight exactly as behind a hung network.
// Used to stop the API between "image created + task_state set" and "workflow started".
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface FreezableProxy {
  address: string;
  freeze(): void;
  thaw(): void;
  close(): Promise<void>;
}

export async function startFreezableProxy(upstream: string): Promise<FreezableProxy> {
  const [host, portText] = splitHostPort(upstream);
  let frozen = false;
  const pairs = new Set<[Socket, Socket]>();
  const server: Server = createServer((client) => {
    const remote = connect(Number(portText), host);
    const pair: [Socket, Socket] = [client, remote];
    pairs.add(pair);
    const forward = (from: Socket, to: Socket): void => {
      from.on('data', (d: Buffer) => {
        if (!to.write(d)) from.pause();
        if (frozen) from.pause();
      });
      to.on('drain', () => {
        if (!frozen) from.resume();
      });
    };
    forward(client, remote);
    forward(remote, client);
    if (frozen) {
      client.pause();
      remote.pause();
    }
    const end = (): void => {
      client.destroy();
      remote.destroy();
      pairs.delete(pair);
    };
    client.on('error', end).on('close', end);
    remote.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  if (address === null || typeof address !== 'object') throw new Error('proxy has no address');
  return {
    address: `127.0.0.1:${address.port}`,
    freeze() {
      frozen = true;
      for (const [a, b] of pairs) {
        a.pause();
        b.pause();
      }
    },
    thaw() {
      frozen = false;
      for (const [a, b] of pairs) {
        a.resume();
        b.resume();
      }
    },
    async close() {
      for (const [a, b] of pairs) {
        a.destroy();
        b.destroy();
      }
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function splitHostPort(address: string): [string, string] {
  const i = address.lastIndexOf(':');
  return [address.slice(0, i), address.slice(i + 1)];
}
