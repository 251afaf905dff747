// What the survival matrix of incremental snapshots needs around a real guest: changes written by
// the guest, a frozen copy of its disk at the snapshot's point in time, the image compared with it
// byte for byte, and the host-side events the matrix survives (reboot, shutdown, managedSave,
// QEMU killed). The guest's own freeze at the snapshot rewrites the ext4 superblock (it clears
// needs_recovery and stamps the write time), so the one region the comparison masks in both
// disks is that superblock, bytes 1024–2047; everything else must be identical.
import { open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DomainState, type Libvirt } from '../../../src/libvirt';
import { runTool, runToolOutput } from '../../../src/process/tool-process';
import type { ImageClient } from '../../../src/images/client';
import { guestExec, waitForAgent } from '../../../src/testing/guest/guest-agent';
import { rbdTarget } from '../../../src/testing/instance-lifecycle';
import { waitForConsole } from '../../../src/testing/guest/guest-console';
import { downloadImage } from '../image-bytes';
import type { InstanceFixture } from '../instance-fixture';
import { consoleLength, GUEST_BOOT_TIMEOUT_MS } from '../linux-guest';

const SUPERBLOCK = { offset: 1024, length: 1024 };

async function exec(fixture: InstanceFixture, path: string, args: string[]): Promise<void> {
  // After a restart (libvirtd's, the guest's) the agent's channel comes back a little later.
  await waitForAgent(fixture.client, fixture.instance.domain, { timeoutMs: 60_000 });
  const out = await guestExec(fixture.client, fixture.instance.domain, path, args, { timeoutMs: 120_000 });
  if (out.exitCode !== 0) throw new Error(`${path} ${args.join(' ')} exited ${out.exitCode}: ${out.stderr}`);
}

/** The guest overwrites `mib` MiB of /mnt/<file> at `atMiB` with random bytes, durably. */
export async function guestWrites(fixture: InstanceFixture, file: string, mib: number, atMiB = 0): Promise<void> {
  await exec(fixture, '/bin/dd', ['if=/dev/urandom', `of=/mnt/${file}`, 'bs=1M', `count=${mib}`, `seek=${atMiB}`, 'conv=notrunc,fsync']);
  await exec(fixture, '/bin/sync', []);
}

/**
 * Brings the guest's disk to rest: a freeze and thaw flush its journal, so nothing is left for
 * ext4 to write before the snapshot's own freeze but that superblock.
 */
export async function settle(fixture: InstanceFixture): Promise<void> {
  // An idle guest prints "ready" before libvirt sees its agent's channel connected.
  await waitForAgent(fixture.client, fixture.instance.domain, { timeoutMs: 60_000 });
  await fixture.client.domainFSFreeze(fixture.instance.domain, [], 0, { timeoutMs: 10_000 });
  await fixture.client.domainFSThaw(fixture.instance.domain, [], 0, { timeoutMs: 10_000 });
}

/** The disk as the guest sees it right now (read beside the running QEMU), as a raw file; an RBD disk read from the cluster. */
export async function frozenCopy(fixture: InstanceFixture, name: string): Promise<string> {
  const out = join(fixture.dir, `${name}.frozen.raw`);
  const { rbd, overlayPath } = fixture.instance;
  const [flags, source] = rbd ? [['-f', 'raw'], rbdTarget(rbd)] : [['-U', '-f', 'qcow2'], overlayPath];
  await runTool('qemu-img', ['convert', '-q', ...flags, '-O', 'raw', source, out]);
  return out;
}

async function maskSuperblock(rawPath: string): Promise<void> {
  const handle = await open(rawPath, 'r+');
  try {
    await handle.write(Buffer.alloc(SUPERBLOCK.length), 0, SUPERBLOCK.length, SUPERBLOCK.offset);
  } finally {
    await handle.close();
  }
}

/** Downloads the image and compares it with the frozen copy (qemu-img compare), the superblock masked in both. */
export async function imageMatchesFrozen(images: ImageClient, imageId: string, frozenRaw: string, dir: string): Promise<{ identical: boolean; output: string }> {
  const file = await downloadImage(images, imageId, dir);
  const raw = `${file}.raw`;
  try {
    const format = (await images.get(imageId)).disk_format === 'raw' ? 'raw' : 'qcow2';
    await runTool('qemu-img', ['check', '-q', '-f', format, file]).catch((err: unknown) => {
      if (format === 'qcow2') throw err;
    });
    await runTool('qemu-img', ['convert', '-q', '-f', format, '-O', 'raw', file, raw]);
    await maskSuperblock(raw);
    await maskSuperblock(frozenRaw);
    const r = await runToolOutput('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', raw, frozenRaw], { okExitCodes: [0, 1] });
    return { identical: r.exitCode === 0, output: r.stdout.trim() };
  } finally {
    await rm(file, { force: true });
    await rm(raw, { force: true });
    await rm(frozenRaw, { force: true });
  }
}

export async function waitForState(client: Libvirt, fixture: InstanceFixture, states: DomainState[], timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const dom = await client.domainLookupByName(fixture.instance.name);
    if (states.includes((await client.domainGetState(dom)).state)) return;
    if (Date.now() > deadline) throw new Error(`domain ${fixture.instance.name} did not reach ${states.join('/')} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Starts the defined domain and waits until the guest reports ready again. */
export async function startAndWait(fixture: InstanceFixture): Promise<void> {
  const from = await consoleLength(fixture.instance.consolePath);
  const dom = await fixture.client.domainLookupByName(fixture.instance.name);
  await fixture.client.domainCreateWithFlags(dom, 0);
  await waitForConsole(fixture.instance.consolePath, /SNAPGUEST ready/, { timeoutMs: GUEST_BOOT_TIMEOUT_MS, fromOffset: from });
}

/** A command inside the guest that ends it (reboot, poweroff): the agent's answer may never come. */
async function execEnding(fixture: InstanceFixture, command: string): Promise<void> {
  await guestExec(fixture.client, fixture.instance.domain, '/bin/sh', ['-c', `sync; ${command}`], { timeoutMs: 5_000 }).catch(() => undefined);
}

export async function rebootInGuest(fixture: InstanceFixture): Promise<void> {
  const from = await consoleLength(fixture.instance.consolePath);
  await execEnding(fixture, 'reboot -f');
  await waitForConsole(fixture.instance.consolePath, /SNAPGUEST ready/, { timeoutMs: GUEST_BOOT_TIMEOUT_MS, fromOffset: from });
}

export async function poweroffInGuest(fixture: InstanceFixture): Promise<void> {
  await execEnding(fixture, 'poweroff -f');
  await waitForState(fixture.client, fixture, [DomainState.Shutoff]);
}

export async function managedSaveAndRestore(fixture: InstanceFixture): Promise<void> {
  const dom = await fixture.client.domainLookupByName(fixture.instance.name);
  await fixture.client.domainManagedSave(dom, 0);
  await waitForState(fixture.client, fixture, [DomainState.Shutoff]);
  await fixture.client.domainCreateWithFlags(dom, 0);
  await waitForState(fixture.client, fixture, [DomainState.Running]);
}

/** kill -9 of the domain's QEMU, then the domain started again (a host crash, for the guest). */
export async function killQemuAndStart(fixture: InstanceFixture): Promise<void> {
  const pid = Number.parseInt((await readFile(`/run/libvirt/qemu/${fixture.instance.name}.pid`, 'utf8')).trim(), 10);
  if (!Number.isSafeInteger(pid) || pid <= 1) throw new Error(`no QEMU pid for ${fixture.instance.name}`);
  process.kill(pid, 'SIGKILL');
  await waitForState(fixture.client, fixture, [DomainState.Shutoff, DomainState.Crashed]);
  await startAndWait(fixture);
}
