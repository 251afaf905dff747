// Faults that act on the machine rather than on our processes: restart the system libvirtd, delete
// an instance the way Nova's delete does, and a small tmpfs of the test's own as a full snapshots dir.
// Argv arrays only; libvirtd is stopped by the pid in its pid file, never by name.
import { execFile } from 'node:child_process';
import { open, readFile, rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { Libvirt, LibvirtError, VIR_DOMAIN_UNDEFINE_MANAGED_SAVE, VIR_ERR_NO_DOMAIN, VIR_ERR_OPERATION_INVALID } from '../../src/libvirt';
import type { InstanceStore } from '../../src/store';
import { FILLER_NAME } from './fault-checks';
import type { InstanceFixture } from './instance-fixture';

const run = promisify(execFile);
const LIBVIRTD_PID_FILE = '/run/libvirtd.pid';

async function waitUntil(what: string, timeoutMs: number, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`${what} not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Stops the system libvirtd (SIGTERM to its pid file's pid), starts it again, waits until it answers. */
export async function restartLibvirtd(uri: string): Promise<void> {
  const pid = Number.parseInt((await readFile(LIBVIRTD_PID_FILE, 'utf8')).trim(), 10);
  if (!Number.isSafeInteger(pid) || pid <= 1) throw new Error(`bad pid in ${LIBVIRTD_PID_FILE}`);
  process.kill(pid, 'SIGTERM');
  // A libvirtd in the middle of a job (a restore) can take longer than that to stop; it is killed
  // then, and started again either way, so no later cell runs without one.
  try {
    await waitUntil('libvirtd exit', 30_000, async () => !alive(pid));
  } catch {
    process.kill(pid, 'SIGKILL');
    await waitUntil('libvirtd exit after SIGKILL', 10_000, async () => !alive(pid));
  }
  await run('libvirtd', ['-d']);
  await waitUntil('libvirtd answering', 30_000, async () => {
    try {
      const client = await Libvirt.connect(uri);
      await client.close();
      return true;
    } catch {
      return false;
    }
  });
}

function ignore(err: unknown, ...codes: number[]): void {
  if (!(err instanceof LibvirtError) || !codes.includes(err.code)) throw err;
}

/** Nova's delete: task_state deleting first, then the domain destroyed and undefined (disks stay for the checks). */
export async function deleteInstance(store: InstanceStore, fixture: InstanceFixture): Promise<void> {
  await store.markDeleting(fixture.instance.domain.uuid);
  const client = await Libvirt.connect(fixture.client.uri);
  try {
    const dom = await client.domainLookupByName(fixture.instance.name);
    await client.domainDestroy(dom).catch((e: unknown) => ignore(e, VIR_ERR_OPERATION_INVALID));
    await client.domainUndefineFlags(dom, VIR_DOMAIN_UNDEFINE_MANAGED_SAVE).catch((e: unknown) => ignore(e, VIR_ERR_NO_DOMAIN));
  } finally {
    await client.close();
  }
}

/**
 * Mounts a tmpfs of `sizeKiB` on `dir` and fills it up to `freeKiB`, so the next extract runs out
 * of space. Returns the unmount (which first removes the filler).
 */
export async function mountFullTmpfs(dir: string, sizeKiB: number, freeKiB: number): Promise<() => Promise<void>> {
  await run('mount', ['-t', 'tmpfs', '-o', `size=${sizeKiB}k,mode=0711`, 'tmpfs', dir]);
  const filler = `${dir}/${FILLER_NAME}`;
  try {
    const file = await open(filler, 'w');
    try {
      await file.write(Buffer.alloc((sizeKiB - freeKiB) * 1024));
    } finally {
      await file.close();
    }
  } catch (err) {
    await run('umount', [dir]);
    throw err;
  }
  return async () => {
    await rm(filler, { force: true });
    await run('umount', [dir]);
  };
}
