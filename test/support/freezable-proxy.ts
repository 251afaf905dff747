// A loopback TCP proxy a test can freeze: while frozen, bytes in both directions are held (the
// sockets stay open), so a client's call is stuck mid-flight as behind a hung network; bytes of a
// connection that closes while frozen are dropped with it.
// Used to stop the API between "image created + task_state set" and "workflow started".
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface FreezableProxy {
  address: string;
  freeze(): void;
  thaw(): void;
  /** open client connections (a killed client's go away once the proxy has seen them close) */
  connections(): number;
  close(): Promise<void>;
}

export async function startFreezableProxy(upstream: string): Promise<FreezableProxy> {
  const [host, portText] = splitHostPort(upstream);
  let frozen = false;
  // Bytes read while frozen are held here, not in the kernel: a paused socket would also hide its
  // peer's close, and bytes of a client killed while frozen would then still reach the upstream.
  const links = new Set<{ from: Socket; to: Socket; held: Buffer[] }>();
  const pairs = new Set<[Socket, Socket]>();
  const server: Server = createServer((client) => {
    const remote = connect(Number(portText), host);
    const pair: [Socket, Socket] = [client, remote];
    pairs.add(pair);
    const own: { from: Socket; to: Socket; held: Buffer[] }[] = [];
    const forward = (from: Socket, to: Socket): void => {
      const link = { from, to, held: [] as Buffer[] };
      links.add(link);
      own.push(link);
      from.on('data', (d: Buffer) => {
        if (frozen) link.held.push(d);
        else if (!to.write(d)) from.pause();
      });
      to.on('drain', () => from.resume());
    };
    forward(client, remote);
    forward(remote, client);
    const end = (): void => {
      client.destroy();
      remote.destroy();
      pairs.delete(pair);
      for (const link of own) links.delete(link);
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
    },
    connections: () => pairs.size,
    thaw() {
      frozen = false;
      for (const link of links) {
        for (const chunk of link.held.splice(0)) link.to.write(chunk);
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
