// A second, independent libvirt daemon on this machine, for the two-host tests: the system
// daemon's binary in a private mount namespace, where private dirs are bind-mounted over
// /run/libvirt, /var/lib/libvirt, /var/cache/libvirt, /var/log/libvirt and /etc/libvirt, and its
// config puts the sockets in a dir of ours (visible outside, so host workers reach it through
// SNAP_LIBVIRT_SOCKET). Domains defined on one daemon are invisible to the other. Needs root.
import { spawn, type ChildProcess } from 'node:child_process';
import { access, appendFile, cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './test-process';

export interface SecondLibvirtd {
  socketPath: string;
  uri: string;
  dir: string;
  stop(): Promise<void>;
}

export async function startSecondLibvirtd(): Promise<SecondLibvirtd> {
  const dir = await mkdtemp(join(tmpdir(), 'libvirtd2-'));
  for (const sub of ['run', 'lib', 'cache', 'log', 'sock']) await mkdir(join(dir, sub), { mode: 0o755 });
  // The system config, minus its persistent domains and autostarted networks (they belong to
  // the system daemon: a copy would define the same guests twice and fight over virbr0).
  await cp('/etc/libvirt', join(dir, 'etc'), {
    recursive: true,
    filter: (src) => !/\/qemu\/[^/]+\.xml$/.test(src) && !src.includes('/autostart'),
  });
  await writeFile(join(dir, 'etc', 'libvirtd.conf'), `unix_sock_dir = "${join(dir, 'sock')}"\nlisten_tls = 0\nlisten_tcp = 0\n`);
  // No virtlogd in the private namespace: QEMU's console log goes to a file directly.
  await appendFile(join(dir, 'etc', 'qemu.conf'), '\nstdio_handler = "file"\n');
  const child: ChildProcess = spawn('unshare', ['--mount', '--propagation', 'private', '--', process.execPath, '--import', 'tsx', join('test', 'support', 'libvirtd-namespace-entry.ts')], {
    cwd: REPO_ROOT,
    env: { ...process.env, SNAP_LIBVIRTD2_DIR: dir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-20_000)));
  child.stderr?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-20_000)));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const socketPath = join(dir, 'sock', 'libvirt-sock');
  const stop = async (): Promise<void> => {
    // Guests of this daemon first (a test's own cleanup should have destroyed them already).
    const qemuRun = join(dir, 'run', 'qemu');
    for (const name of await readdir(qemuRun).catch(() => [] as string[])) {
      if (!name.endsWith('.pid')) continue;
      const pid = Number((await readFile(join(qemuRun, name), 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 1) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    // Should the entry have died without stopping it, the daemon is still ours by its pid file.
    const pid = Number((await readFile(join(dir, 'libvirtd.pid'), 'utf8').catch(() => '')).trim());
    if (Number.isInteger(pid) && pid > 1) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await stop();
      throw new Error(`second libvirtd exited during start:\n${output}`);
    }
    if (await access(socketPath).then(() => true, () => false)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`second libvirtd did not create ${socketPath} in time:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { socketPath, uri: 'qemu:///system', dir, stop };
}
