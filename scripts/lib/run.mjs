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

let aptUpdated = false;

// Another bootstrap (a sibling checkout on the same test machine) may hold dpkg's lock: wait for it.
const APT_LOCK_WAIT = ['-o', 'DPkg::Lock::Timeout=600'];

/**
 * apt-get install as root on a test machine; refuses clearly elsewhere. `noRecommends` keeps
 * large package families (Ceph) to what the tests use.
 */
export function aptInstall(packages, why, { noRecommends = false } = {}) {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0 || !onPath('apt-get')) {
    throw new Error(`${why}: install ${packages.join(' ')}`);
  }
  const quiet = { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } };
  if (!aptUpdated) run('apt-get', [...APT_LOCK_WAIT, 'update', '-q'], quiet);
  aptUpdated = true;
  log(`installing ${packages.join(' ')}`);
  const extra = noRecommends ? ['--no-install-recommends'] : [];
  run('apt-get', [...APT_LOCK_WAIT, 'install', '-y', '-q', ...extra, ...packages], quiet);
}
