// Builds snapctl the way the package does (tsc -p tsconfig.build.json) into a throw-away folder
// under node_modules/.cache (so its requires resolve to the project's node_modules) and runs the
// built binary as a child process, argv only.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, mkdir } from 'node:fs/promises';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');

export interface SnapctlResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface BuiltSnapctl {
  binary: string;
  run(args: string[], env: Record<string, string>): Promise<SnapctlResult>;
  cleanup(): Promise<void>;
}

function exec(file: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 120_000): Promise<SnapctlResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export async function buildSnapctl(): Promise<BuiltSnapctl> {
  const cache = join(ROOT, 'node_modules', '.cache');
  await mkdir(cache, { recursive: true });
  const outDir = await mkdtemp(join(cache, 'snapctl-build-'));
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  // Type errors elsewhere in the tree do not stop tsc from emitting; the binary's existence is what counts.
  const build = await exec(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', outDir], process.env);
  const binary = join(outDir, 'cli', 'snapctl.js');
  if (!existsSync(binary)) throw new Error(`snapctl was not built: ${build.stdout}${build.stderr}`);
  return {
    binary,
    run: (args, env) => exec(process.execPath, [binary, ...args], { PATH: process.env.PATH ?? '', ...env }),
    cleanup: () => rm(outDir, { recursive: true, force: true }),
  };
}
