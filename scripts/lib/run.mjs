// Process helpers for the bootstrap scripts: argv arrays only, never a shell.
import { spawnSync } from 'node:child_process';

export function run(cmd, args, options = {}) {
  const result = spawnSync(cmd, args, { stdio: 'inherit', ...options });
  if (result.error) throw new Error(`${cmd}: ${result.error.message}`);
  if (result.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${result.status}`);
  return result;
}

export function probe(cmd, args, options = {}) {
  const result = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...options });
  return { ok: !result.error && result.status === 0, stdout: result.stdout ?? '', stderr: result.stderr ?? '' };
}

export function onPath(cmd) {
  return probe('sh', ['-c', 'command -v "$1"', 'sh', cmd]).ok;
}

export function log(message) {
  process.stderr.write(`[bootstrap] ${message}\n`);
}
