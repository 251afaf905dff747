// Cached Python virtualenvs for test tools from PyPI: `.tools/venvs/<name>`, rebuilt only when the
// requirements file's content changes (its sha256 is stamped next to the venv).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { log, probe, run } from './run.mjs';

// Debian's python modules (python3-rbd, python3-rados): compiled extensions with no usable wheel on
// PyPI. The python3 on PATH may not be Debian's, so --system-site-packages would not see them.
const DEBIAN_DIST_PACKAGES = '/usr/lib/python3/dist-packages';

/** Links Debian's compiled `modules` (e.g. rbd, rados) into the venv's site-packages, for the venv's own python version. */
function linkDebianModules(python, modules) {
  const { ok, stdout } = probe(python, ['-c', 'import sysconfig, sys; print(sysconfig.get_paths()["purelib"]); print(sys.implementation.cache_tag)']);
  if (!ok) throw new Error(`${python}: cannot read its site-packages`);
  const [sitePackages, cacheTag] = stdout.trim().split('\n');
  const available = existsSync(DEBIAN_DIST_PACKAGES) ? readdirSync(DEBIAN_DIST_PACKAGES) : [];
  for (const module of modules) {
    const file = available.find((name) => name.startsWith(`${module}.${cacheTag}-`) && name.endsWith('.so'));
    if (file === undefined) throw new Error(`Debian's python module ${module} for ${cacheTag} is not in ${DEBIAN_DIST_PACKAGES}`);
    symlinkSync(join(DEBIAN_DIST_PACKAGES, file), join(sitePackages, file));
  }
  run(python, ['-c', `import ${modules.join(', ')}`]);
}

/**
 * The venv's python, creating or refreshing the venv when needed. `debianModules` names compiled
 * modules taken from Debian's packages instead of PyPI (they are part of the stamp).
 */
export function ensurePythonVenv(root, name, requirementsFile, { debianModules = [] } = {}) {
  const dir = join(root, '.tools', 'venvs', name);
  const python = join(dir, 'bin', 'python');
  const stamp = `${dir}.sha256`;
  const hash = createHash('sha256').update(readFileSync(requirementsFile));
  if (debianModules.length > 0) hash.update(`\ndebian: ${debianModules.join(',')}`);
  const wanted = hash.digest('hex');
  if (existsSync(python) && existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === wanted) return python;
  if (!probe('python3', ['-m', 'venv', '--help']).ok) throw new Error(`python3 with venv is needed for ${name}`);
  log(`installing ${name} into a virtualenv (once; cached under .tools/venvs)`);
  const started = Date.now();
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(root, '.tools', 'venvs'), { recursive: true });
  run('python3', ['-m', 'venv', dir]);
  run(python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '-r', requirementsFile], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (debianModules.length > 0) linkDebianModules(python, debianModules);
  writeFileSync(stamp, `${wanted}\n`);
  log(`${name} installed in ${Math.round((Date.now() - started) / 1000)} s`);
  return python;
}
