// "KVM usable" means a real kernel reached userspace under it: on some hosts /dev/kvm opens and
// OS-less guests run, but a Linux kernel hangs right after the decompressor. So the answer comes
// from booting the test guest once under KVM, cached beside the guest build (a rebuilt guest is
// probed again); TCG is the fallback.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import type { Libvirt } from '../../libvirt';
import { kvmUsable } from '../instance-layout';
import { createInstance, removeInstance } from '../instance-lifecycle';
import { GUEST_READY_RE, waitForConsole } from './guest-console';
import type { GuestArtifacts } from './guest-builder';

const ProbeResultSchema = z.object({ host: z.string(), usable: z.boolean(), bootMs: z.number().nullable(), probedAt: z.string() });
export type KvmProbeResult = z.infer<typeof ProbeResultSchema>;

/** Under working KVM the guest is up in about a second; this is generous for a loaded host. */
const PROBE_TIMEOUT_MS = 20_000;

function probeFile(guest: GuestArtifacts): string {
  return join(guest.dir, 'kvm-probe.json');
}

export async function cachedKvmProbe(guest: GuestArtifacts): Promise<KvmProbeResult | null> {
  try {
    const result = ProbeResultSchema.parse(JSON.parse(await readFile(probeFile(guest), 'utf8')));
    return result.host === hostname() ? result : null;
  } catch {
    return null;
  }
}

async function bootUnderKvm(client: Libvirt, guest: GuestArtifacts): Promise<number | null> {
  const dir = await mkdtemp(join(tmpdir(), 'snap-kvm-probe-'));
  const name = `kvm-probe-${process.pid}`;
  const started = Date.now();
  let layout: Awaited<ReturnType<typeof createInstance>> | null = null;
  try {
    layout = await createInstance(client, { name, dir, domainType: 'kvm', diskSizeBytes: 16 * 1024 * 1024, linux: { artifacts: guest, workload: 'idle', agent: false } });
    await waitForConsole(layout.consolePath, GUEST_READY_RE, { timeoutMs: PROBE_TIMEOUT_MS });
    return Date.now() - started;
  } catch {
    return null;
  } finally {
    if (layout) await removeInstance(client, layout).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

/** The domain type Linux test guests run with on this host: probed once, then cached. */
export async function linuxGuestDomainType(client: Libvirt, guest: GuestArtifacts): Promise<'kvm' | 'qemu'> {
  if (!kvmUsable()) return 'qemu';
  const cached = await cachedKvmProbe(guest);
  if (cached) return cached.usable ? 'kvm' : 'qemu';
  const bootMs = await bootUnderKvm(client, guest);
  const result: KvmProbeResult = { host: hostname(), usable: bootMs !== null, bootMs, probedAt: new Date().toISOString() };
  await writeFile(probeFile(guest), `${JSON.stringify(result)}\n`);
  return result.usable ? 'kvm' : 'qemu';
}

/** One line for reports: how the Linux test guests run on this host, from the cached probe. */
export async function describeGuestHypervisor(guest: GuestArtifacts | null): Promise<string> {
  if (!kvmUsable()) return 'Linux guests under TCG (no usable /dev/kvm)';
  const probe = guest ? await cachedKvmProbe(guest) : null;
  if (!probe) return 'Linux guests: KVM probe not run yet';
  return probe.usable ? `Linux guests under KVM (booted in ${probe.bootMs ?? '?'} ms)` : 'Linux guests under TCG (/dev/kvm opens, but a real kernel does not boot under it)';
}
