// Cached Python virtualenvs for test tools from PyPI: `.tools/venvs/<name>`, rebuilt only when the
// requirements file's content changes (its sha256 is stamped next to the venv).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { log, probe, run } from './run.mjs';

/** The venv's python, creating or refreshing the venv when needed. */
export function ensurePythonVenv(root, name, requirementsFile) {
  const dir = join(root, '.tools', 'venvs', name);
  const python = join(dir, 'bin', 'python');
  const stamp = `${dir}.sha256`;
  const wanted = createHash('sha256').update(readFileSync(requirementsFile)).digest('hex');
  if (existsSync(python) && existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === wanted) return python;
  if (!probe('python3', ['-m', 'venv', '--help']).ok) throw new Error(`python3 with venv is needed for ${name}`);
  log(`installing ${name} into a virtualenv (once; cached under .tools/venvs)`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(root, '.tools', 'venvs'), { recursive: true });
  run('python3', ['-m', 'venv', dir]);
  run(python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '-r', requirementsFile], { stdio: ['ignore', 'ignore', 'inherit'] });
  writeFileSync(stamp, `${wanted}\n`);
  return python;
}
