// Runs test/support/tempest/validate.py in the cached Tempest venv: each answer is checked against
// the response schema Tempest's own clients select for its microversion.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';

export interface SchemaCase {
  version: string;
  /** e.g. servers.get_server, servers.list_servers_detail, versions.list_versions */
  schema: string;
  status: number;
  body: unknown;
}

const FailuresSchema = z.array(z.object({ index: z.number().int(), error: z.string() }));
const ROOT = join(__dirname, '..', '..');
const PYTHON = join(ROOT, '.tools', 'venvs', 'tempest', 'bin', 'python');

/** The refused answers, each with Tempest's reason; empty when all pass. */
export async function tempestRefusals(cases: readonly SchemaCase[]): Promise<{ case: SchemaCase; error: string }[]> {
  if (!existsSync(PYTHON)) throw new Error('no Tempest venv: run `node scripts/bootstrap.mjs --test` first');
  const child = spawn(PYTHON, [join(ROOT, 'test', 'support', 'tempest', 'validate.py')], { stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (d: Buffer) => out.push(d));
  child.stderr.on('data', (d: Buffer) => err.push(d));
  child.stdin.end(JSON.stringify(cases));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  if (code !== 0) throw new Error(`validate.py exited with ${String(code)}: ${Buffer.concat(err).toString('utf8').slice(-2000)}`);
  return FailuresSchema.parse(JSON.parse(Buffer.concat(out).toString('utf8'))).map((f) => ({ case: cases[f.index] as SchemaCase, error: f.error }));
}
