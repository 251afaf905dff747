// Step 4 of Nova's LibvirtDriver.snapshot: look the domain up, find its root disk and formats,
// decide the image format, and whether this host could snapshot it live.
import type { DomainDescription } from '../contract';
import type { Domain, Libvirt } from '../libvirt';
import { isLibvirtError, VIR_ERR_CONFIG_UNSUPPORTED, VIR_ERR_NO_SUPPORT } from '../libvirt';
import type { ChainRoots } from './disk-chain';
import { directSnapshotRefusal } from './direct-snapshot';
import { describeRootDisk } from './disk-source/root-disk';
import { isEncryptedEphemeral } from './disk-source/block-source';
import { isLiveCapable, mayRestartWithBackupJob, type LivePolicyFacts } from './live-policy';
import { parseDomainXml, rootDisk } from './domain-xml';
import { DEFAULT_RBD_CEPH_CONF, type HostConfig } from './host-config';
import { novaPowerState } from './power-state';

// Nova's MIN_LIBVIRT_LIVESNAPSHOT_VERSION / MIN_QEMU_LIVESNAPSHOT_VERSION (1.3.0 / 1.3.0), as libvirt encodes versions.
const MIN_LIBVIRT_LIVE = 1_003_000;
const MIN_QEMU_LIVE = 1_003_000;
// The backup API (pull mode over NBD) is on by default from libvirt 7.2.0, on QEMU's -blockdev (QEMU 4.2+);
// below either, snapshots take the block-copy path.
const MIN_LIBVIRT_BACKUP = 7_002_000;
const MIN_QEMU_BACKUP = 4_002_000;

/** What the seed calls a disk no source here reads: rbd for a network disk, else its format (a block device has a source or is refused). */
function unreadableFormatOf(disk: { sourceType: string; driverType: string | null; source: string | null }): string {
  if (disk.sourceType === 'network') return 'rbd';
  return disk.driverType ?? 'raw';
}

/** `rbd` absent: the cluster of Nova's defaults (the default conf, librados' default user); `blockDevices` absent: none is read. */
export type DescribeConfig = Pick<HostConfig, 'snapshotImageFormat' | 'ephemeralEncryption' | 'disableLiveSnapshot' | 'disableBackupApi'> & Partial<Pick<HostConfig, 'rbd' | 'blockDevices' | 'coldResumeBeforeStream'>> & ChainRoots;

/**
 * What the snapshot needs to know of the domain, all of it from libvirt: the disk's format from its
 * XML, its backing chain from its `<backingStore>` (src/host/disk-chain.ts), its size from
 * virDomainGetBlockInfo. Nothing here probes the disk, whose bytes are the guest's.
 */
export async function describeDomain(client: Libvirt, dom: Domain, config: DescribeConfig): Promise<DomainDescription> {
  const [{ state }, xml, libVersion, hvVersion] = await Promise.all([
    client.domainGetState(dom),
    client.domainGetXMLDesc(dom, 0),
    client.connectGetLibVersion(),
    client.connectGetVersion(),
  ]);
  const facts = parseDomainXml(xml);
  const disk = rootDisk(facts);
  // Files, RBD images and block devices: the backup job serves each live, and each has a cold reader.
  const described = await describeRootDisk(disk, { client, dom, roots: config, settings: config.rbd ?? { confPath: DEFAULT_RBD_CEPH_CONF }, blockDevices: config.blockDevices });
  const readable = described !== null;
  const sourceFormat = described?.facts.sourceFormat ?? unreadableFormatOf(disk);
  const configured = config.snapshotImageFormat;
  const imageFormat: 'qcow2' | 'raw' = configured ?? (sourceFormat === 'qcow2' ? 'qcow2' : 'raw');
  // Encrypted ephemeral storage is never live (isLiveCapable); cold, it takes the one-pass path like any disk.
  const encrypted = isEncryptedEphemeral(config.ephemeralEncryption, disk);
  const backupCapable = readable && libVersion >= MIN_LIBVIRT_BACKUP && hvVersion >= MIN_QEMU_BACKUP && !config.disableBackupApi;
  const policy: LivePolicyFacts = {
    source: described?.source.kind ?? null,
    liveVersions: libVersion >= MIN_LIBVIRT_LIVE && hvVersion >= MIN_QEMU_LIVE,
    backupCapable,
    encrypted,
    disableLiveSnapshot: config.disableLiveSnapshot,
    allowLiveBlockDevices: config.blockDevices?.allowLive === true,
  };
  return {
    powerState: novaPowerState(state),
    diskPath: disk.source ?? '',
    diskTarget: disk.target,
    sourceFormat,
    imageFormat,
    backingChain: described?.facts.backingChain ?? [],
    virtualSize: described?.facts.virtualSize ?? 0,
    virtType: facts.virtType,
    liveCapable: isLiveCapable(policy),
    backupCapable,
    ...(config.coldResumeBeforeStream === true && mayRestartWithBackupJob(policy) ? { coldRestart: true } : {}),
    // Only where it applies: descriptions of other disks stay as they were.
    ...(directSnapshotRefusal(described?.source.kind ?? null, config.rbd ?? {}) === null ? { directSnapshot: true } : {}),
  };
}

/**
 * Nova's probe: blockJobAbort on the root disk ends any stale job and tells whether this domain's
 * hypervisor supports block jobs at all. CONFIG_UNSUPPORTED rules live out, as in the seed; so
 * does NO_SUPPORT (a driver without block jobs at all, e.g. test:///), which the seed predates.
 * Other errors (typically "no active block job") are ignored.
 */
export async function probeLiveSnapshot(client: Libvirt, dom: Domain, diskTarget: string): Promise<boolean> {
  try {
    await client.domainBlockJobAbort(dom, diskTarget, 0);
    return true;
  } catch (err) {
    if (isLibvirtError(err, VIR_ERR_CONFIG_UNSUPPORTED, VIR_ERR_NO_SUPPORT)) return false;
    if (isLibvirtError(err)) return true;
    throw err;
  }
}
