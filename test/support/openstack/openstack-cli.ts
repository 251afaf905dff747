// The real python-openstackclient (cached venv), run as an operator runs it: a clouds.yaml with
// password auth against Keystone, argv only, JSON output parsed.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..', '..');
const OPENSTACK = join(ROOT, '.tools', 'venvs', 'openstackclient', 'bin', 'openstack');

export interface CloudLogin {
  authUrl: string;
  username: string;
  password: string;
  project: string;
}

export interface CliAnswer {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Writes clouds.yaml with one cloud per login (JSON is YAML); returns its path. */
export async function writeCloudsYaml(dir: string, clouds: Record<string, CloudLogin>): Promise<string> {
  const file = join(dir, 'clouds.yaml');
  const entries = Object.fromEntries(
    Object.entries(clouds).map(([name, c]) => [
      name,
      {
        auth: { auth_url: c.authUrl, username: c.username, password: c.password, project_name: c.project, user_domain_name: 'Default', project_domain_name: 'Default' },
        region_name: 'RegionOne',
        interface: 'public',
        identity_api_version: 3,
      },
    ]),
  );
  await writeFile(file, JSON.stringify({ clouds: entries }, null, 2));
  return file;
}

export function openstack(cloudsYaml: string, cloud: string, args: readonly string[], options: { cwd?: string; timeoutMs?: number } = {}): Promise<CliAnswer> {
  if (!existsSync(OPENSTACK)) throw new Error('no openstackclient venv: run `node scripts/bootstrap.mjs --test` first');
  return new Promise((resolve, reject) => {
    const child = spawn(OPENSTACK, ['--os-cloud', cloud, ...args], {
      cwd: options.cwd,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: options.cwd ?? ROOT, OS_CLIENT_CONFIG_FILE: cloudsYaml },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: options.timeoutMs ?? 120_000,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
  });
}

/** Runs the CLI and fails with its stderr unless it exits 0; `-f json` output comes back parsed. */
export async function openstackOk(cloudsYaml: string, cloud: string, args: readonly string[], options: { cwd?: string; timeoutMs?: number } = {}): Promise<unknown> {
  const answer = await openstack(cloudsYaml, cloud, args, options);
  if (answer.code !== 0) throw new Error(`openstack ${args.join(' ')} exited ${String(answer.code)}: ${answer.stderr.slice(-2000)}`);
  return args.includes('json') ? JSON.parse(answer.stdout) : answer.stdout;
}
