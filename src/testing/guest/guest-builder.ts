// Builds the test guest: Debian's cloud kernel, and an initramfs holding busybox, the virtio
// modules, qemu-ga with the shared libraries ldd names, our workload program and our init. Cached
// under a key made of the package versions and the sources, so a new package version or an edited
// init rebuilds it, and an unchanged one costs one apt-cache look-up.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { runTool, runToolOutput } from '../../process/tool-process';
import { buildCpio, type CpioEntry } from './cpio';
import { fetchAndUnpack, resolveGuestPackages, type GuestPackage } from './guest-packages';

/** Bumped when the layout of the initramfs changes in a way the sources do not show. */
const BUILDER_VERSION = 1;
const SOURCES_DIR = __dirname;
/** Loaded by init in this order: each needs the ones before it. */
export const GUEST_MODULES = ['virtio_ring', 'virtio', 'virtio_pci_legacy_dev', 'virtio_pci_modern_dev', 'virtio_pci', 'virtio_blk', 'virtio_console'] as const;

export const GuestManifestSchema = z.object({
  key: z.string().regex(/^[0-9a-f]{16}$/),
  kernelRelease: z.string().regex(/^[A-Za-z0-9._+-]+$/),
  packages: z.array(z.object({ name: z.string(), version: z.string() })),
  initrdSha256: z.string().regex(/^[0-9a-f]{64}$/),
  builtAt: z.string(),
});
export type GuestManifest = z.infer<typeof GuestManifestSchema>;

export interface GuestArtifacts {
  dir: string;
  kernelPath: string;
  initrdPath: string;
  manifest: GuestManifest;
}

export class GuestBuildFailed extends Error {
  override readonly name = 'GuestBuildFailed';
}

/** `.tools/guest` of the checkout, unless SNAP_GUEST_CACHE_DIR says otherwise. */
export function defaultGuestCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const configured = z.string().startsWith('/').optional().parse(env.SNAP_GUEST_CACHE_DIR);
  return configured ?? resolve(SOURCES_DIR, '..', '..', '..', '.tools', 'guest');
}

/** The cache key of a build of `packages` with this checkout's init, workload and builder. */
export async function sourceDigest(packages: readonly GuestPackage[]): Promise<string> {
  const hash = createHash('sha256');
  hash.update(JSON.stringify({ BUILDER_VERSION, packages, modules: GUEST_MODULES }));
  for (const file of ['init.sh', join('workload', 'snapwl.c')]) hash.update(await readFile(join(SOURCES_DIR, file)));
  return hash.digest('hex').slice(0, 16);
}

function artifactsIn(dir: string, manifest: GuestManifest): GuestArtifacts {
  return { dir, kernelPath: join(dir, 'vmlinuz'), initrdPath: join(dir, 'initrd.img'), manifest };
}

async function readManifest(dir: string): Promise<GuestManifest | null> {
  try {
    return GuestManifestSchema.parse(JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')));
  } catch {
    return null;
  }
}

/** `ldd` output lines `libx.so.1 => /lib/.../libx.so.1 (0x…)` and the loader `/lib64/ld-linux-x86-64.so.2 (0x…)`. */
export function parseLdd(stdout: string): string[] {
  const libs = new Set<string>();
  for (const line of stdout.split('\n')) {
    if (/not found/.test(line)) throw new GuestBuildFailed(`a library qemu-ga needs is missing on this host: ${line.trim()}`);
    const m = /=>\s*(\/\S+)\s+\(0x/.exec(line) ?? /^\s*(\/\S+)\s+\(0x/.exec(line);
    if (m?.[1]) libs.add(m[1]);
  }
  if (libs.size === 0) throw new GuestBuildFailed('ldd named no libraries for qemu-ga');
  return [...libs];
}

function dirsOf(paths: readonly string[]): string[] {
  const dirs = new Set<string>();
  for (const p of paths) {
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  return [...dirs].sort((a, b) => a.split('/').length - b.split('/').length || a.localeCompare(b));
}

async function initramfsEntries(root: string, kernelRelease: string, snapwl: Buffer): Promise<CpioEntry[]> {
  const qemuGa = join(root, 'usr', 'sbin', 'qemu-ga');
  const { stdout } = await runToolOutput('ldd', [qemuGa]);
  const files: { path: string; data: Buffer; mode: number }[] = [
    { path: 'init', data: await readFile(join(SOURCES_DIR, 'init.sh')), mode: 0o755 },
    { path: 'bin/busybox', data: await readFile(join(root, 'bin', 'busybox')), mode: 0o755 },
    { path: 'bin/snapwl', data: snapwl, mode: 0o755 },
    { path: 'usr/sbin/qemu-ga', data: await readFile(qemuGa), mode: 0o755 },
  ];
  // readFile follows the soname symlink, so each library lands under the name the loader asks for.
  for (const lib of parseLdd(stdout)) files.push({ path: lib.replace(/^\//, ''), data: await readFile(lib), mode: 0o755 });
  const moduleDir = join(root, 'lib', 'modules', kernelRelease, 'kernel');
  const modules = await findModules(moduleDir);
  for (const name of GUEST_MODULES) {
    const file = modules.get(name);
    if (!file) throw new GuestBuildFailed(`the kernel package has no module ${name}`);
    files.push({ path: `lib/modules/${name}.ko`, data: await readFile(file), mode: 0o644 });
  }
  const emptyDirs = ['dev', 'proc', 'sys', 'mnt', 'tmp', 'run', 'var/run', 'sbin', 'usr/bin'];
  const entries: CpioEntry[] = dirsOf([...files.map((f) => f.path), ...emptyDirs.map((d) => `${d}/x`)]).map((path) => ({ kind: 'dir', path }));
  entries.push({ kind: 'chardev', path: 'dev/console', major: 5, minor: 1 });
  entries.push(...files.map((f): CpioEntry => ({ kind: 'file', ...f })));
  entries.push({ kind: 'symlink', path: 'bin/sh', target: 'busybox' });
  return entries;
}

async function findModules(dir: string): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile() && entry.name.endsWith('.ko')) found.set(entry.name.slice(0, -3), join(entry.parentPath, entry.name));
  }
  return found;
}

async function kernelReleaseOf(root: string): Promise<string> {
  const releases = await readdir(join(root, 'lib', 'modules'));
  if (releases.length !== 1 || !releases[0]) throw new GuestBuildFailed(`expected one kernel release in the package, found ${releases.join(', ')}`);
  return releases[0];
}

async function build(cacheDir: string, key: string, packages: GuestPackage[], log: (m: string) => void): Promise<GuestArtifacts> {
  const work = await mkdtemp(join(cacheDir, '.build-'));
  try {
    const root = join(work, 'root');
    log(`fetching ${packages.map((p) => `${p.name}=${p.version}`).join(' ')}`);
    await fetchAndUnpack(packages, join(cacheDir, 'debs'), root);
    const kernelRelease = await kernelReleaseOf(root);
    const snapwlPath = join(work, 'snapwl');
    await runTool('gcc', ['-static', '-O2', '-Wall', '-Wextra', '-Werror', '-o', snapwlPath, join(SOURCES_DIR, 'workload', 'snapwl.c')]);
    const initrd = buildCpio(await initramfsEntries(root, kernelRelease, await readFile(snapwlPath)));
    const out = join(work, 'out');
    await mkdir(out);
    await copyFile(join(root, 'boot', `vmlinuz-${kernelRelease}`), join(out, 'vmlinuz'));
    await writeFile(join(out, 'initrd.img'), initrd);
    const manifest: GuestManifest = {
      key,
      kernelRelease,
      packages,
      initrdSha256: createHash('sha256').update(initrd).digest('hex'),
      builtAt: new Date().toISOString(),
    };
    await writeFile(join(out, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    const final = join(cacheDir, key);
    // A concurrent builder may have won: its result is as good as ours.
    await rename(out, final).catch(async (err: unknown) => {
      if (!(await readManifest(final))) throw err;
    });
    return artifactsIn(final, manifest);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function removeStaleBuilds(cacheDir: string, keep: string): Promise<void> {
  for (const name of await readdir(cacheDir)) {
    if (/^[0-9a-f]{16}$/.test(name) && name !== keep) await rm(join(cacheDir, name), { recursive: true, force: true });
  }
}

/** The current guest, built if the cache does not hold it for today's package versions and sources. */
export async function ensureGuest(options: { cacheDir?: string; log?: (message: string) => void } = {}): Promise<GuestArtifacts> {
  const cacheDir = options.cacheDir ?? defaultGuestCacheDir();
  const log = options.log ?? (() => undefined);
  await mkdir(cacheDir, { recursive: true });
  const packages = await resolveGuestPackages();
  const key = await sourceDigest(packages);
  const dir = join(cacheDir, key);
  const cached = await readManifest(dir);
  if (cached && existsSync(join(dir, 'vmlinuz')) && existsSync(join(dir, 'initrd.img'))) return artifactsIn(dir, cached);
  log(`building the test guest (${key})`);
  const artifacts = await build(cacheDir, key, packages, log);
  await removeStaleBuilds(cacheDir, key);
  return artifacts;
}

/**
 * The cached guest built from today's init and workload, without consulting the package archive (for
 * processes that must not build): a build of older sources (another checkout's, sharing the cache)
 * would boot a guest without the workloads these sources name.
 */
export async function cachedGuest(cacheDir = defaultGuestCacheDir()): Promise<GuestArtifacts | null> {
  if (!existsSync(cacheDir)) return null;
  for (const name of await readdir(cacheDir)) {
    if (!/^[0-9a-f]{16}$/.test(name)) continue;
    const manifest = await readManifest(join(cacheDir, name));
    if (manifest && manifest.key === name && (await sourceDigest(manifest.packages)) === name) return artifactsIn(join(cacheDir, name), manifest);
  }
  return null;
}
