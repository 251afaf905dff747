// An OpenStack service's WSGI app under gunicorn for tests: its setup commands (argv only), then
// gunicorn on a loopback port until `readyUrl` answers; stop() ends it and removes its state dir.
import { spawn, type ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';

export function runTool(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    const err: Buffer[] = [];
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ').slice(0, 120)} exited ${String(code)}: ${Buffer.concat(err).toString('utf8').slice(-1500)}`))));
  });
}

export interface WsgiServiceSpec {
  name: string;
  /** The venv's bin directory (gunicorn lives there). */
  venvBin: string;
  /** `module:variable` of the WSGI app, in this folder. */
  app: string;
  port: number;
  env: NodeJS.ProcessEnv;
  readyUrl: string;
  /** The service's state (config, SQLite, keys), removed on stop. */
  dir: string;
  setup: readonly (readonly [string, string[]])[];
}

export async function startWsgiService(spec: WsgiServiceSpec): Promise<{ stop(): Promise<void> }> {
  let server: ChildProcess | undefined;
  const stop = async (): Promise<void> => {
    if (server !== undefined && server.exitCode === null) {
      const exited = new Promise((resolve) => server?.once('exit', resolve));
      server.kill('SIGTERM');
      await exited;
    }
    await rm(spec.dir, { recursive: true, force: true });
  };
  try {
    for (const [cmd, args] of spec.setup) await runTool(cmd, [...args], spec.env);
    server = spawn(join(spec.venvBin, 'gunicorn'), ['--bind', `127.0.0.1:${spec.port}`, '--workers', '2', '--timeout', '300', '--chdir', __dirname, spec.app], { env: spec.env, stdio: 'ignore' });
    for (let i = 0; ; i += 1) {
      if (await fetch(spec.readyUrl).then((r) => r.ok, () => false)) break;
      if (i > 160 || server.exitCode !== null) throw new Error(`${spec.name} did not answer at ${spec.readyUrl}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { stop };
}
