import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { waitForPort } from '../net/port-probe';
import { CUSTOM_SEARCH_ATTRIBUTES } from './search-attributes';

export const PROJECT_ROOT = join(__dirname, '..', '..');

const CliRecordSchema = z.object({ path: z.string().min(1) });

/** The Temporal CLI that scripts/bootstrap.mjs found or installed (it records the choice). */
export function temporalCliPath(root = PROJECT_ROOT): string {
  const recordFile = join(root, '.tools', 'temporal-cli.json');
  try {
    return CliRecordSchema.parse(JSON.parse(readFileSync(recordFile, 'utf8'))).path;
  } catch (cause) {
    throw new Error(`no Temporal CLI recorded in .tools/temporal-cli.json: run \`node scripts/bootstrap.mjs\` first (${String(cause)})`);
  }
}

export interface DevServerOptions {
  cli?: string;
  ip?: string;
  port: number;
  /** undefined = headless (no Web UI). */
  uiPort?: number;
  /** SQLite file: workflows survive a restart of the server. */
  dbFile: string;
  log?: (line: string) => void;
}

export interface DevServer {
  address: string;
  uiUrl?: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

export function devServerArgs(options: DevServerOptions): string[] {
  const args = ['server', 'start-dev', '--ip', options.ip ?? '127.0.0.1', '--port', String(options.port), '--db-filename', options.dbFile, '--log-level', 'warn'];
  args.push(...(options.uiPort === undefined ? ['--headless'] : ['--ui-port', String(options.uiPort)]));
  for (const key of CUSTOM_SEARCH_ATTRIBUTES) args.push('--search-attribute', `${key.name}=Keyword`);
  return args;
}

export async function startDevServer(options: DevServerOptions): Promise<DevServer> {
  const ip = options.ip ?? '127.0.0.1';
  const child = spawn(options.cli ?? temporalCliPath(), devServerArgs(options), { stdio: ['ignore', 'pipe', 'pipe'] });
  const log = options.log ?? (() => undefined);
  child.stdout?.on('data', (chunk: Buffer) => log(chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => log(chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await waitForPort('temporal server', options.port, { host: ip, timeoutMs: 60_000, stillStarting: () => child.exitCode === null });
  return {
    address: `${ip}:${options.port}`,
    uiUrl: options.uiPort === undefined ? undefined : `http://${ip}:${options.uiPort}`,
    process: child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
