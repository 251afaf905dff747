// A tiny instance laid out the way Nova lays one out on a compute host: a qcow2 base image (the
// Glance image cache) and a qcow2 overlay backed by it (the instance disk), attached as virtio vda.
// The guest runs no OS; QEMU just runs, which is all the snapshot path needs.
import { openSync, closeSync, constants as fsConstants } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { LibvirtError, VIR_DOMAIN_UNDEFINE_MANAGED_SAVE, VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA, VIR_ERR_NO_DOMAIN, VIR_ERR_OPERATION_INVALID, type Domain, type Libvirt } from '../libvirt';
import { assertSafePath, createQcow2, writePattern, type Pattern } from './qemu-img';
import { xmlEscape } from './xml-escape';

export const INSTANCE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;

/** Known content: one pattern only the base holds, one only the overlay holds. */
export const BASE_PATTERN: Pattern = { byte: 0xab, offset: 0, length: 64 * 1024 };
export const OVERLAY_PATTERN: Pattern = { byte: 0xcd, offset: 1024 * 1024, length: 64 * 1024 };

export class InstanceLayoutError extends Error {
  override readonly name = 'InstanceLayoutError';
}

export interface InstanceSpec {
  /** Domain name; also names the disk files. [A-Za-z0-9][A-Za-z0-9_-]{0,62} */
  name: string;
  /** Absolute directory the disks go into; created if missing. */
  dir: string;
  /** 64..128, default 96. */
  memoryMiB?: number;
  /** Virtual disk size, default 16 MiB. */
  diskSizeBytes?: number;
  /** Default: kvm when /dev/kvm is usable, else qemu (TCG). */
  domainType?: 'kvm' | 'qemu';
}

export interface InstanceLayout {
  name: string;
  dir: string;
  basePath: string;
  overlayPath: string;
  memoryMiB: number;
  diskSizeBytes: number;
  domainType: 'kvm' | 'qemu';
}

export interface Instance extends InstanceLayout {
  domain: Domain;
}

export function kvmUsable(): boolean {
  try {
    closeSync(openSync('/dev/kvm', fsConstants.O_RDWR));
    return true;
  } catch {
    return false;
  }
}

export function validateInstanceName(name: string): string {
  if (typeof name !== 'string' || !INSTANCE_NAME_RE.test(name)) throw new InstanceLayoutError(`invalid instance name: ${JSON.stringify(name)}`);
  return name;
}

export function planInstance(spec: InstanceSpec): InstanceLayout {
  const name = validateInstanceName(spec.name);
  const dir = assertSafePath(spec.dir);
  const memoryMiB = spec.memoryMiB ?? 96;
  if (!Number.isInteger(memoryMiB) || memoryMiB < 64 || memoryMiB > 128) throw new InstanceLayoutError(`memoryMiB must be 64..128, got ${memoryMiB}`);
  const diskSizeBytes = spec.diskSizeBytes ?? 16 * 1024 * 1024;
  const minDisk = OVERLAY_PATTERN.offset + OVERLAY_PATTERN.length;
  if (!Number.isSafeInteger(diskSizeBytes) || diskSizeBytes < minDisk || diskSizeBytes > 1024 ** 3) throw new InstanceLayoutError(`diskSizeBytes out of range: ${diskSizeBytes}`);
  const domainType = spec.domainType ?? (kvmUsable() ? 'kvm' : 'qemu');
  if (domainType !== 'kvm' && domainType !== 'qemu') throw new InstanceLayoutError(`invalid domain type ${String(domainType)}`);
  return {
    name,
    dir,
    basePath: path.join(dir, `${name}-base.qcow2`),
    overlayPath: path.join(dir, `${name}-disk.qcow2`),
    memoryMiB,
    diskSizeBytes,
    domainType,
  };
}

/**
 * q35 with spare pcie-root-ports so disks can be hot-plugged. ICH9 ACPI hot-plug is switched off
 * so the ports use native PCIe hot-plug: with ACPI hot-plug, unplug waits for a guest OS to eject
 * the device, and this guest has none, so detach would time out and leave the disk attached.
 */
export function buildDomainXml(layout: InstanceLayout): string {
  const ports = [1, 2, 3, 4, 5, 6].map((i) => `    <controller type='pci' index='${i}' model='pcie-root-port'/>`).join('\n');
  return `<domain type='${layout.domainType}' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>${xmlEscape(layout.name)}</name>
  <memory unit='MiB'>${layout.memoryMiB}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <boot dev='hd'/>
  </os>
  <features><acpi/><apic/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none'/>
      <source file='${xmlEscape(layout.overlayPath)}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <controller type='pci' index='0' model='pcie-root'/>
${ports}
    <memballoon model='none'/>
  </devices>
  <qemu:commandline>
    <qemu:arg value='-global'/>
    <qemu:arg value='ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off'/>
  </qemu:commandline>
</domain>
`;
}

/** Disk XML for a hot-plugged virtio disk (used by attach/detach). */
export function buildDiskXml(file: string, target: string): string {
  if (!/^vd[a-z]{1,2}$/.test(target)) throw new InstanceLayoutError(`invalid virtio target ${JSON.stringify(target)}`);
  return `<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${xmlEscape(assertSafePath(file))}'/><target dev='${target}' bus='virtio'/></disk>`;
}

/** Base image with BASE_PATTERN, overlay backed by it with OVERLAY_PATTERN. */
export async function createInstanceDisks(layout: InstanceLayout): Promise<void> {
  await mkdir(layout.dir, { recursive: true, mode: 0o755 });
  await createQcow2(layout.basePath, { sizeBytes: layout.diskSizeBytes });
  await writePattern(layout.basePath, BASE_PATTERN);
  await createQcow2(layout.overlayPath, { backing: layout.basePath });
  await writePattern(layout.overlayPath, OVERLAY_PATTERN);
}

/** Lays out the disks, defines the domain and (unless `start` is false) starts it. */
export async function createInstance(client: Libvirt, spec: InstanceSpec, opts: { start?: boolean; startFlags?: number } = {}): Promise<Instance> {
  const layout = planInstance(spec);
  await createInstanceDisks(layout);
  let domain: Domain;
  try {
    domain = await client.domainDefineXML(buildDomainXml(layout));
    if (opts.start !== false) domain = await client.domainCreateWithFlags(domain, opts.startFlags ?? 0);
  } catch (e) {
    await removeInstance(client, layout).catch(() => undefined);
    throw e;
  }
  return { ...layout, domain };
}

function ignore(e: unknown, ...codes: number[]): void {
  if (e instanceof LibvirtError && codes.includes(e.code)) return;
  throw e;
}

/**
 * Destroys (if running) and undefines the domain, managed-save image included, then deletes the
 * disk files. Safe to call on a half-created or already-removed instance.
 */
export async function removeInstance(client: Libvirt, layout: Pick<InstanceLayout, 'name' | 'basePath' | 'overlayPath'>, extraFiles: readonly string[] = []): Promise<void> {
  validateInstanceName(layout.name);
  let domain: Domain | null = null;
  try {
    domain = await client.domainLookupByName(layout.name);
  } catch (e) {
    ignore(e, VIR_ERR_NO_DOMAIN);
  }
  if (domain) {
    await client.domainDestroy(domain).catch((e: unknown) => ignore(e, VIR_ERR_OPERATION_INVALID, VIR_ERR_NO_DOMAIN));
    await client
      .domainUndefineFlags(domain, VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
      .catch((e: unknown) => ignore(e, VIR_ERR_NO_DOMAIN));
  }
  for (const f of [layout.overlayPath, layout.basePath, ...extraFiles]) await rm(assertSafePath(f), { force: true });
}
