// The real Linux test guest for fixtures: the cached build (built here if the bootstrap did not),
// the domain type the KVM probe settled on, and readiness read off the serial console.
import type { Libvirt } from '../../src/libvirt';
import type { LinuxGuestSpec } from '../../src/testing/instance-layout';
import { cachedGuest, ensureGuest, type GuestArtifacts } from '../../src/testing/guest/guest-builder';
import { GUEST_READY_RE, readConsole, waitForConsole } from '../../src/testing/guest/guest-console';
import { linuxGuestDomainType } from '../../src/testing/guest/kvm-probe';

export type LinuxGuestOptions = Omit<LinuxGuestSpec, 'artifacts'>;

let artifacts: Promise<GuestArtifacts> | null = null;

export function testGuestArtifacts(): Promise<GuestArtifacts> {
  artifacts ??= cachedGuest().then((cached) => cached ?? ensureGuest());
  return artifacts;
}

export async function linuxGuestSpec(client: Libvirt, options: LinuxGuestOptions = {}): Promise<{ linux: LinuxGuestSpec; domainType: 'kvm' | 'qemu' }> {
  const guest = await testGuestArtifacts();
  return { linux: { ...options, artifacts: guest }, domainType: await linuxGuestDomainType(client, guest) };
}

/** Under TCG on a loaded 2-core host a boot takes a few seconds; this is the bound for a test. */
export const GUEST_BOOT_TIMEOUT_MS = 60_000;

/** Waits for the next "ready" after what the console already holds (`fromOffset`). */
export async function waitForGuestReady(consolePath: string, fromOffset = 0): Promise<string> {
  return waitForConsole(consolePath, GUEST_READY_RE, { timeoutMs: GUEST_BOOT_TIMEOUT_MS, fromOffset });
}

export async function consoleLength(consolePath: string): Promise<number> {
  return (await readConsole(consolePath)).length;
}
