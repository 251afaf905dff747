// A run of consecutive loopback ports that are free right now, for daemons that bind in a range
// (Ceph's `ms bind port min/max`) rather than on a port the kernel picks.
import { createServer } from 'node:net';

/** Whether loopback `port` can be bound right now. */
export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** `count` consecutive free ports in 20000..32767, below Linux's default ephemeral range (where the kernel hands out client ports). */
export async function freePortRange(count: number, attempts = 50): Promise<{ min: number; max: number }> {
  for (let attempt = 0; attempt < attempts; attempt += 1) {
    const min = 20_000 + Math.floor(Math.random() * Math.floor((12_768 - count) / count)) * count;
    const ports = Array.from({ length: count }, (_, i) => min + i);
    if ((await Promise.all(ports.map(portFree))).every(Boolean)) return { min, max: min + count - 1 };
  }
  throw new Error(`no ${count} consecutive free loopback ports found`);
}
