import { createConnection } from 'node:net';
import { portFree } from '../../src/testing/ceph/port-range';

const handedOut = new Set<number>();

/**
 * A loopback port that was free a moment ago, for a server a test starts later. Taken in
 * 10000..19999, not where the kernel picks (port 0): a port from the ephemeral range (32768..60999)
 * is only reserved on paper until the server binds it, and daemons started in between take theirs
 * there: a Temporal dev server binds its internal services on ports the kernel picks, and a stack
 * test's compute API or worker metrics port handed out just before was then sometimes Temporal's.
 * Apart from Ceph's ranges (20000..32767, src/testing/ceph/port-range.ts); never the same port twice
 * in one process.
 */
export async function freePort(attempts = 200): Promise<number> {
  for (let attempt = 0; attempt < attempts; attempt += 1) {
    const port = 10_000 + Math.floor(Math.random() * 10_000);
    if (handedOut.has(port) || !(await portFree(port))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`no free loopback port in 10000..19999 after ${attempts} tries`);
}

/** Whether something on loopback `port` accepts a connection now. */
export function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
