// Whether something listens on a TCP port: how the stack and its tests know a server is up.
import { createConnection } from 'node:net';

export function portAnswers(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Polls until the port answers; `stillStarting` lets the caller fail fast when the server died. */
export async function waitForPort(what: string, port: number, options: { host?: string; timeoutMs?: number; stillStarting?: () => boolean } = {}): Promise<void> {
  const host = options.host ?? '127.0.0.1';
  const timeoutMs = options.timeoutMs ?? 120_000;
  const deadline = Date.now() + timeoutMs;
  while (!(await portAnswers(port, host))) {
    if (options.stillStarting && !options.stillStarting()) throw new Error(`${what} exited before it listened on ${host}:${port}`);
    if (Date.now() > deadline) throw new Error(`${what} did not listen on ${host}:${port} within ${timeoutMs / 1000}s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
