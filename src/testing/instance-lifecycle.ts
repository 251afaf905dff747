// Creating and removing test/demo instances: the disks (Nova's base + overlay), the domain, and
// everything a half-created or already-removed instance may have left.
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isLibvirtError, VIR_DOMAIN_UNDEFINE_MANAGED_SAVE, VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA, VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA, VIR_ERR_NO_DOMAIN, VIR_ERR_OPERATION_INVALID, type Domain, type Libvirt } from '../libvirt';
import { assertSafePath } from '../fs/safe-path';
import { createQcow2, writePattern } from '../host/qemu-img';
import { runTool } from '../process/tool-process';
import { CephCommandError, RbdClient } from '../ceph';
import { attachLoopDevice, detachLoopDevices } from './loop-device';
import { BASE_PATTERN, OVERLAY_PATTERN, buildDomainXml, planInstance, validateInstanceName, type InstanceLayout, type InstanceSpec, type RbdDiskSpec } from './instance-layout';

export interface Instance extends InstanceLayout {
  domain: Domain;
}

/** The `rbd:` filename QEMU's tools open an RBD image by (names and path checked by planInstance). */
export function rbdTarget(rbd: RbdDiskSpec): string {
  return `rbd:${rbd.pool}/${rbd.image}:conf=${rbd.confPath}:id=${rbd.user}`;
}

/**
 * The Linux guest's disk: an ext4 filesystem made on a raw file (lazy init off, so the guest
 * kernel does not zero inode tables behind the workload's back), then converted into the qcow2
 * base, imported into RBD as a raw image (Nova's images_type=rbd), or kept raw for a loop device (lvm).
 * Each data volume gets the same filesystem.
 */
async function createExt4Disk(layout: InstanceLayout): Promise<void> {
  const scratch = await mkdtemp(path.join(layout.dir, `.${layout.name}-mkfs-`));
  try {
    const content = path.join(scratch, 'content');
    await mkdir(content);
    await writeFile(path.join(content, 'base.txt'), `base image of ${layout.name}\n`);
    const raw = path.join(scratch, 'base.raw');
    const sizeKiB = Math.floor(layout.diskSizeBytes / 1024);
    await runTool('mkfs.ext4', ['-q', '-F', '-L', 'snapdata', '-E', 'lazy_itable_init=0,lazy_journal_init=0', '-d', content, raw, `${sizeKiB}k`]);
    const [format, target] = layout.rbd ? ['raw', rbdTarget(layout.rbd)] : layout.block ? ['raw', assertSafePath(layout.overlayPath)] : ['qcow2', assertSafePath(layout.basePath)];
    // a Cinder volume's image exists already (Cinder made it at the volume's size): written into, not created
    const existing = (volume: RbdDiskSpec | null): string[] => (volume?.volumeId === undefined ? [] : ['-n']);
    await runTool('qemu-img', ['convert', '-q', ...existing(layout.rbd), '-f', 'raw', '-O', format, raw, target]);
    for (const volume of layout.dataVolumes) await runTool('qemu-img', ['convert', '-q', ...existing(volume), '-f', 'raw', '-O', 'raw', raw, rbdTarget(volume)]);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** OS-less: base with BASE_PATTERN, overlay with OVERLAY_PATTERN, or one raw disk with OVERLAY_PATTERN. Linux: ext4 base, empty overlay; the ext4 disk in RBD; or on a loop device named as an LV. */
export async function createInstanceDisks(layout: InstanceLayout): Promise<void> {
  await mkdir(layout.dir, { recursive: true, mode: 0o755 });
  if (layout.block) {
    await createExt4Disk(layout);
    const device = await attachLoopDevice(layout.overlayPath);
    await symlink(device, layout.block.devicePath).catch(async (err: unknown) => {
      await detachLoopDevices(layout.overlayPath);
      throw err;
    });
    return;
  }
  if (layout.diskFormat === 'raw') {
    await runTool('truncate', ['-s', String(layout.diskSizeBytes), assertSafePath(layout.overlayPath)]);
    await writePattern(layout.overlayPath, OVERLAY_PATTERN, 'raw');
    return;
  }
  if (layout.linux) {
    await createExt4Disk(layout);
    if (!layout.rbd) await createQcow2(layout.overlayPath, { backing: layout.basePath });
    return;
  }
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
  if (isLibvirtError(e, ...codes)) return;
  throw e;
}

/**
 * Destroys (if running) and undefines the domain, managed-save image included, then deletes the
 * disk files and the console log. Safe to call on a half-created or already-removed instance.
 */
export async function removeInstance(
  client: Libvirt,
  layout: Pick<InstanceLayout, 'name' | 'basePath' | 'overlayPath'> & { consolePath?: string; rbd?: RbdDiskSpec | null; block?: InstanceLayout['block'] },
  extraFiles: readonly string[] = [],
): Promise<void> {
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
      .domainUndefineFlags(domain, VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA)
      .catch((e: unknown) => ignore(e, VIR_ERR_NO_DOMAIN));
  }
  // a Cinder volume's image is Cinder's to remove
  if (layout.rbd && layout.rbd.volumeId === undefined) await removeRbdDisk(layout.rbd);
  if (layout.block) {
    await rm(assertSafePath(layout.block.devicePath), { force: true });
    await detachLoopDevices(layout.overlayPath);
  }
  const files = [layout.overlayPath, layout.basePath, ...(layout.consolePath ? [layout.consolePath] : []), ...extraFiles];
  for (const f of files) await rm(assertSafePath(f), { force: true });
}

/** The RBD disk and every snapshot on it (protected ones too); nothing when already gone. */
async function removeRbdDisk(rbd: RbdDiskSpec): Promise<void> {
  const client = new RbdClient({ confPath: rbd.confPath, user: rbd.user });
  if ((await client.find(rbd)) === null) return;
  for (const snap of await client.snapList(rbd)) if (snap.protected) await client.snapUnprotect(rbd, snap.name);
  for (const snap of await client.snapList(rbd)) await client.snapRemove(rbd, snap.name);
  await removeOnceUnwatched(client, rbd);
}

/**
 * A QEMU destroyed while an OSD was restarting can leave its watch on the image until the OSD
 * times it out (30 s, osd_client_watch_timeout): `rbd rm` answers EBUSY until then.
 */
async function removeOnceUnwatched(client: RbdClient, rbd: RbdDiskSpec): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await client.remove(rbd);
      return;
    } catch (err) {
      if (!(err instanceof CephCommandError && err.busy) || Date.now() > deadline) throw err;
      await sleep(2000);
    }
  }
}
