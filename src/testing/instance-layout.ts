// A test or demo instance laid out the way Nova lays one out on a compute host: a qcow2 base image
// (the Glance image cache) and a qcow2 overlay backed by it (the instance disk), attached as virtio
// vda. Two kinds: a real Linux guest (Debian's kernel booted directly, an ext4 data disk, a guest
// agent and a write workload), and an OS-less guest whose QEMU just runs, for protocol tests that
// need no kernel and cost no CPU.
import { closeSync, openSync, constants as fsConstants } from 'node:fs';
import path from 'node:path';
import { assertSafePath } from '../fs/safe-path';
import { type Pattern } from '../host/qemu-img';
import { xmlEscape } from '../host/xml-escape';
import { checkCephUser, checkImageRef } from '../ceph';
import { DEFAULT_DEMO_PROJECT, ProjectIdSchema } from '../auth/auth-config';
import type { GuestArtifacts } from './guest/guest-builder';

export const INSTANCE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;

/** OS-less guests only: one pattern only the base holds, one only the overlay holds. */
export const BASE_PATTERN: Pattern = { byte: 0xab, offset: 0, length: 64 * 1024 };
export const OVERLAY_PATTERN: Pattern = { byte: 0xcd, offset: 1024 * 1024, length: 64 * 1024 };

export const WORKLOADS = ['log', 'blocks', 'lockstep', 'idle'] as const;
export type Workload = (typeof WORKLOADS)[number];

export class InstanceLayoutError extends Error {
  override readonly name = 'InstanceLayoutError';
}

export interface LinuxGuestSpec {
  artifacts: GuestArtifacts;
  /** what the guest writes from boot on; default 'log' */
  workload?: Workload;
  /** start qemu-ga in the guest (the channel is always there); default true */
  agent?: boolean;
  /** workload throttle, KiB/s; default 1024 */
  rateKiB?: number;
}

/**
 * Nova's images_type=rbd: the root disk is the raw RBD image `<pool>/<instance uuid>_disk`, a
 * network disk whose cephx key QEMU gets from a libvirt secret of type ceph.
 */
export interface RbdDiskSpec {
  pool: string;
  image: string;
  /** the cephx id (rbd_user) */
  user: string;
  /** the libvirt secret holding the user's key (rbd_secret_uuid) */
  secretUuid: string;
  /** the monitor libvirt names in the disk's <host> */
  monHost: { host: string; port: number };
  /** the cluster's ceph.conf, for importing the disk */
  confPath: string;
  /**
   * A Cinder volume as the root disk (Nova's boot from volume): the image `volumes/volume-<id>` is
   * Cinder's, filled here but never created or removed, and the disk's `<serial>` is the volume id.
   */
  volumeId?: string;
}

/**
 * Nova's images_type=lvm, a loop device standing in for the logical volume: the root disk is the
 * raw block device `<dir>/<name>` (Nova's /dev/<vg>/<uuid>_disk), a symlink to the loop device
 * over the instance's sparse raw file (src/testing/loop-device.ts).
 */
export interface BlockDiskSpec {
  /** the volume group's directory of device names */
  dir: string;
  /** the LV's name, `<instance uuid>_disk` */
  name: string;
}

export interface InstanceSpec {
  /** Domain name; also names the disk files. [A-Za-z0-9][A-Za-z0-9_-]{0,62} */
  name: string;
  /** Absolute directory the disks go into; created if missing. */
  dir: string;
  /** OS-less 64..128 (default 96); Linux 96..512 (default 160). */
  memoryMiB?: number;
  /** Virtual disk size; default 16 MiB OS-less, 64 MiB Linux. */
  diskSizeBytes?: number;
  /** Default: kvm when /dev/kvm is usable, else qemu (TCG); for Linux guests, the KVM probe's answer. */
  domainType?: 'kvm' | 'qemu';
  /** A real Linux guest; absent, the guest runs no OS. */
  linux?: LinuxGuestSpec;
  /** Linux guests: the root disk in RBD instead of a qcow2 overlay on a base file */
  rbd?: RbdDiskSpec;
  /** Linux guests: the root disk a block device (a loop device over the raw file overlayPath) */
  block?: BlockDiskSpec;
  /**
   * Linux guests: Cinder volumes on RBD attached after the root disk as vdb, vdc, … (each with its
   * volumeId, the disk's serial), each given the guest's ext4; init mounts vdb at /mnt2.
   */
  dataVolumes?: readonly RbdDiskSpec[];
  /** the domain's (and so the instance's) uuid; default: libvirt picks one */
  uuid?: string;
  /**
   * OS-less guests: 'raw' lays the disk out as one raw file holding OVERLAY_PATTERN (no base), a
   * disk whose every byte, the first ones included, is the guest's. Default qcow2 (base + overlay).
   */
  diskFormat?: 'qcow2' | 'raw';
  /** The `<nova:owner>` project, as Nova writes it into every domain; default the demo project. */
  projectId?: string;
}

export interface LinuxGuestLayout {
  kernelPath: string;
  initrdPath: string;
  workload: Workload;
  agent: boolean;
  rateKiB: number;
}

export interface InstanceLayout {
  name: string;
  dir: string;
  basePath: string;
  /** the instance's disk (vda): the qcow2 overlay, or the raw disk */
  overlayPath: string;
  diskFormat: 'qcow2' | 'raw';
  /** the serial console, appended to across restarts (Linux guests) */
  consolePath: string;
  memoryMiB: number;
  diskSizeBytes: number;
  domainType: 'kvm' | 'qemu';
  linux: LinuxGuestLayout | null;
  /** the root disk is this RBD image (basePath and overlayPath then hold nothing) */
  rbd: RbdDiskSpec | null;
  /** the root disk is this block device, over the raw file overlayPath (basePath then holds nothing) */
  block: { devicePath: string } | null;
  /** Cinder volumes attached after the root disk, in target order from vdb */
  dataVolumes: RbdDiskSpec[];
  uuid: string | null;
  /** the owning project the domain's Nova metadata names */
  projectId: string;
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

function intInRange(value: number, min: number, max: number, what: string): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) throw new InstanceLayoutError(`${what} must be ${min}..${max}, got ${value}`);
  return value;
}

function planLinux(spec: LinuxGuestSpec): LinuxGuestLayout {
  const workload = spec.workload ?? 'log';
  if (!WORKLOADS.includes(workload)) throw new InstanceLayoutError(`unknown workload ${JSON.stringify(workload)}`);
  return {
    kernelPath: assertSafePath(spec.artifacts.kernelPath),
    initrdPath: assertSafePath(spec.artifacts.initrdPath),
    workload,
    agent: spec.agent ?? true,
    rateKiB: intInRange(spec.rateKiB ?? 1024, 1, 1024 * 1024, 'rateKiB'),
  };
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** vdb..vdf: the spare root ports leave room for a few, and the bench attaches at most four volumes in all */
const MAX_DATA_VOLUMES = 5;

function planRbd(spec: RbdDiskSpec): RbdDiskSpec {
  const { pool, image } = checkImageRef(spec);
  if (!UUID_RE.test(spec.secretUuid)) throw new InstanceLayoutError(`invalid secret uuid ${JSON.stringify(spec.secretUuid)}`);
  if (!/^[0-9.]+$/.test(spec.monHost.host)) throw new InstanceLayoutError(`invalid monitor address ${JSON.stringify(spec.monHost.host)}`);
  if (spec.volumeId !== undefined && !UUID_RE.test(spec.volumeId)) throw new InstanceLayoutError(`invalid volume id ${JSON.stringify(spec.volumeId)}`);
  const volume = spec.volumeId === undefined ? {} : { volumeId: spec.volumeId };
  return { pool, image, user: checkCephUser(spec.user), secretUuid: spec.secretUuid, monHost: { host: spec.monHost.host, port: intInRange(spec.monHost.port, 1, 65_535, 'monitor port') }, confPath: assertSafePath(spec.confPath), ...volume };
}

export function planInstance(spec: InstanceSpec): InstanceLayout {
  const name = validateInstanceName(spec.name);
  const dir = assertSafePath(spec.dir);
  const linux = spec.linux ? planLinux(spec.linux) : null;
  if (spec.rbd && !linux) throw new InstanceLayoutError('an RBD root disk is for Linux guests');
  const rbd = spec.rbd ? planRbd(spec.rbd) : null;
  if (spec.block && (!linux || rbd)) throw new InstanceLayoutError('a block-device root disk is for Linux guests, and not beside RBD');
  const block = spec.block ? { devicePath: path.join(assertSafePath(spec.block.dir), validateInstanceName(spec.block.name)) } : null;
  const dataVolumes = (spec.dataVolumes ?? []).map(planRbd);
  if (dataVolumes.length > 0 && !linux) throw new InstanceLayoutError('data volumes are for Linux guests');
  if (dataVolumes.length > MAX_DATA_VOLUMES) throw new InstanceLayoutError(`at most ${MAX_DATA_VOLUMES} data volumes, got ${dataVolumes.length}`);
  if (dataVolumes.some((v) => v.volumeId === undefined)) throw new InstanceLayoutError('a data volume is a Cinder volume: it needs its volume id');
  if (spec.uuid !== undefined && !UUID_RE.test(spec.uuid)) throw new InstanceLayoutError(`invalid uuid ${JSON.stringify(spec.uuid)}`);
  const memoryMiB = linux ? intInRange(spec.memoryMiB ?? 160, 96, 512, 'memoryMiB') : intInRange(spec.memoryMiB ?? 96, 64, 128, 'memoryMiB');
  const minDisk = linux ? 16 * 1024 * 1024 : OVERLAY_PATTERN.offset + OVERLAY_PATTERN.length;
  const diskSizeBytes = intInRange(spec.diskSizeBytes ?? (linux ? 64 : 16) * 1024 * 1024, minDisk, 8 * 1024 ** 3, 'diskSizeBytes');
  const domainType = spec.domainType ?? (kvmUsable() && !linux ? 'kvm' : 'qemu');
  if (domainType !== 'kvm' && domainType !== 'qemu') throw new InstanceLayoutError(`invalid domain type ${String(domainType)}`);
  const diskFormat = spec.diskFormat ?? 'qcow2';
  if (diskFormat !== 'qcow2' && (diskFormat !== 'raw' || linux)) throw new InstanceLayoutError(`disk format ${String(diskFormat)} is not laid out${linux ? ' for Linux guests' : ''}`);
  const project = ProjectIdSchema.safeParse(spec.projectId ?? DEFAULT_DEMO_PROJECT);
  if (!project.success) throw new InstanceLayoutError(`invalid project id ${JSON.stringify(spec.projectId)}`);
  return {
    name,
    dir,
    basePath: path.join(dir, `${name}-base.qcow2`),
    overlayPath: path.join(dir, `${name}-disk.${block ? 'raw' : diskFormat}`),
    diskFormat: block ? 'raw' : diskFormat,
    consolePath: path.join(dir, `${name}-console.log`),
    memoryMiB,
    diskSizeBytes,
    domainType,
    linux,
    rbd,
    block,
    dataVolumes,
    uuid: spec.uuid ?? null,
    projectId: project.data,
  };
}

/** The kernel command line: the serial console, and the workload init starts. */
export function guestCommandLine(linux: LinuxGuestLayout): string {
  return ['console=ttyS0', 'loglevel=4', 'panic=-1', 'mitigations=off', `snap.workload=${linux.workload}`, `snap.agent=${linux.agent ? 'on' : 'off'}`, `snap.rate=${linux.rateKiB}`].join(' ');
}

function osXml(layout: InstanceLayout): string {
  if (!layout.linux) return `<type arch='x86_64' machine='q35'>hvm</type>\n    <boot dev='hd'/>`;
  return [
    `<type arch='x86_64' machine='q35'>hvm</type>`,
    `<kernel>${xmlEscape(layout.linux.kernelPath)}</kernel>`,
    `<initrd>${xmlEscape(layout.linux.initrdPath)}</initrd>`,
    `<cmdline>${xmlEscape(guestCommandLine(layout.linux))}</cmdline>`,
  ].join('\n    ');
}

/**
 * The owner in Nova's domain metadata, as Nova writes it, so the host's report gives the instance
 * its project (a domain without one belongs to no project).
 * q35 with spare pcie-root-ports so disks can be hot-plugged. ICH9 ACPI hot-plug is switched off
 * so the ports use native PCIe hot-plug: with ACPI hot-plug, unplug waits for a guest OS to eject
 * the device, and the OS-less guest has none, so detach would time out and leave the disk attached.
 * Linux guests get a serial console in a file and the guest agent's channel (libvirt picks its socket).
 */
export function buildDomainXml(layout: InstanceLayout): string {
  const ports = [1, 2, 3, 4, 5, 6].map((i) => `    <controller type='pci' index='${i}' model='pcie-root-port'/>`).join('\n');
  const linuxDevices = layout.linux
    ? `
    <serial type='file'>
      <source path='${xmlEscape(assertSafePath(layout.consolePath))}' append='on'/>
      <target port='0'/>
    </serial>
    <channel type='unix'>
      <target type='virtio' name='org.qemu.guest_agent.0'/>
    </channel>`
    : '';
  return `<domain type='${layout.domainType}' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>${xmlEscape(layout.name)}</name>${layout.uuid !== null ? `\n  <uuid>${layout.uuid}</uuid>` : ''}
  <memory unit='MiB'>${layout.memoryMiB}</memory>
  <vcpu>1</vcpu>
  <os>
    ${osXml(layout)}
  </os>
  <metadata>
    <nova:instance xmlns:nova='http://openstack.org/xmlns/libvirt/nova/1.1'>
      <nova:owner><nova:project uuid='${xmlEscape(layout.projectId)}'>${xmlEscape(layout.projectId)}</nova:project></nova:owner>
    </nova:instance>
  </metadata>
  <features><acpi/><apic/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    ${[rootDiskXml(layout), ...layout.dataVolumes.map((v, i) => rbdDiskXml(v, dataVolumeTarget(i)))].join('\n    ')}
    <controller type='pci' index='0' model='pcie-root'/>
${ports}${linuxDevices}
    <memballoon model='none'/>
  </devices>
  <qemu:commandline>
    <qemu:arg value='-global'/>
    <qemu:arg value='ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off'/>
  </qemu:commandline>
</domain>
`;
}

/** The root disk: Nova's qcow2 overlay file, its network disk for images_type=rbd (auth before source, as Nova writes it), or its block disk for lvm. */
function rootDiskXml(layout: InstanceLayout): string {
  if (layout.block !== null) {
    return `<disk type='block' device='disk'>
      <driver name='qemu' type='raw' cache='none' io='native'/>
      <source dev='${xmlEscape(layout.block.devicePath)}'/>
      <target dev='vda' bus='virtio'/>
    </disk>`;
  }
  if (layout.rbd === null) {
    return `<disk type='file' device='disk'>
      <driver name='qemu' type='${layout.diskFormat}' cache='none'/>
      <source file='${xmlEscape(layout.overlayPath)}'/>
      <target dev='vda' bus='virtio'/>
    </disk>`;
  }
  return rbdDiskXml(layout.rbd, 'vda');
}

/** The target of the i-th data volume: vdb, vdc, … */
export function dataVolumeTarget(i: number): string {
  return `vd${String.fromCharCode('b'.charCodeAt(0) + i)}`;
}

/** Nova's network disk for an RBD image (auth before source, as Nova writes it), a volume's id as its serial. */
function rbdDiskXml(r: RbdDiskSpec, target: string): string {
  return `<disk type='network' device='disk'>
      <driver name='qemu' type='raw' cache='writeback' discard='unmap'/>
      <auth username='${xmlEscape(r.user)}'>
        <secret type='ceph' uuid='${xmlEscape(r.secretUuid)}'/>
      </auth>
      <source protocol='rbd' name='${xmlEscape(`${r.pool}/${r.image}`)}'>
        <host name='${xmlEscape(r.monHost.host)}' port='${r.monHost.port}'/>
      </source>
      <target dev='${target}' bus='virtio'/>${r.volumeId === undefined ? '' : `
      <serial>${r.volumeId}</serial>`}
    </disk>`;
}

/** Disk XML for a hot-plugged virtio disk (used by attach/detach). */
export function buildDiskXml(file: string, target: string): string {
  if (!/^vd[a-z]{1,2}$/.test(target)) throw new InstanceLayoutError(`invalid virtio target ${JSON.stringify(target)}`);
  return `<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${xmlEscape(assertSafePath(file))}'/><target dev='${target}' bus='virtio'/></disk>`;
}
