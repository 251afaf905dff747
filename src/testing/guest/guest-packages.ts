// The guest's Debian packages: which versions the archive offers now (so a new kernel or agent
// rebuilds the guest), and the .deb files themselves, fetched with apt-get download and unpacked
// with dpkg-deb -x (no maintainer script runs). Nothing comes from anywhere but the package archive.
import { existsSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { runTool, runToolOutput, ToolFailed } from '../../process/tool-process';
import { errorMessage } from '../../contract';

/** The metapackage names the kernel; the others are taken as they are. */
export const KERNEL_METAPACKAGE = 'linux-image-cloud-amd64';
export const USERSPACE_PACKAGES = ['busybox-static', 'qemu-guest-agent'] as const;

const PackageNameSchema = z.string().regex(/^[a-z0-9][a-z0-9.+-]{1,100}$/, 'not a Debian package name');
const VersionSchema = z.string().regex(/^[A-Za-z0-9.+~:-]{1,100}$/, 'not a Debian version');

export interface GuestPackage {
  name: string;
  version: string;
}

export class GuestPackagesUnavailable extends Error {
  override readonly name = 'GuestPackagesUnavailable';
}

async function candidateVersion(name: string): Promise<string | null> {
  const { stdout } = await runToolOutput('apt-cache', ['policy', PackageNameSchema.parse(name)]);
  const candidate = /^\s*Candidate:\s*(\S+)\s*$/m.exec(stdout)?.[1];
  if (!candidate || candidate === '(none)') return null;
  return VersionSchema.parse(candidate);
}

async function kernelPackageName(): Promise<string | null> {
  const { stdout } = await runToolOutput('apt-cache', ['depends', KERNEL_METAPACKAGE]);
  const dep = /^\s*Depends:\s*(linux-image-\S+)\s*$/m.exec(stdout)?.[1];
  return dep ? PackageNameSchema.parse(dep) : null;
}

async function resolveOnce(): Promise<GuestPackage[] | null> {
  const kernel = await kernelPackageName();
  if (!kernel) return null;
  const names = [kernel, ...USERSPACE_PACKAGES];
  const resolved: GuestPackage[] = [];
  for (const name of names) {
    const version = await candidateVersion(name);
    if (!version) return null;
    resolved.push({ name, version });
  }
  return resolved;
}

/** The archive's current candidates; the package lists are refreshed once if they know none. */
export async function resolveGuestPackages(): Promise<GuestPackage[]> {
  const first = await resolveOnce();
  if (first) return first;
  await runTool('apt-get', ['update', '-q']).catch((err: unknown) => {
    throw new GuestPackagesUnavailable(`apt-get update failed: ${errorMessage(err)}`);
  });
  const second = await resolveOnce();
  if (!second) throw new GuestPackagesUnavailable(`the package archive offers no ${[KERNEL_METAPACKAGE, ...USERSPACE_PACKAGES].join(', ')}`);
  return second;
}

/** apt-get download names files with the epoch's colon escaped as %3a. */
function debFileName(pkg: GuestPackage): string {
  return `${pkg.name}_${pkg.version.replace(/:/g, '%3a')}_amd64.deb`;
}

/** Downloads what the deb cache lacks, then unpacks every package into `root`. */
export async function fetchAndUnpack(packages: readonly GuestPackage[], debDir: string, root: string): Promise<void> {
  await mkdir(debDir, { recursive: true });
  await mkdir(root, { recursive: true });
  const missing = packages.filter((p) => !existsSync(join(debDir, debFileName(p))));
  if (missing.length > 0) {
    try {
      await runToolOutput('apt-get', ['download', '-q', ...missing.map((p) => `${p.name}=${p.version}`)], { cwd: debDir });
    } catch (err) {
      throw new GuestPackagesUnavailable(`apt-get download failed: ${err instanceof ToolFailed ? err.message : String(err)}`);
    }
  }
  const present = new Set(await readdir(debDir));
  for (const pkg of packages) {
    const file = debFileName(pkg);
    if (!present.has(file)) throw new GuestPackagesUnavailable(`apt-get download left no ${file}`);
    await runTool('dpkg-deb', ['-x', join(debDir, file), root]);
  }
}
