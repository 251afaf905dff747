// The host worker's configuration, from the environment (validated; a bad value stops the worker
// at start with a message naming the variable).
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { HostNameSchema } from '../contract';
import { DataDirSchema } from '../config/data-dir';
import { EnvBooleanSchema, ImageUrlSchema, parseEnv } from '../config/env';
import { CephUserSchema, PoolNameSchema } from '../ceph';
import { VolumeUrlSchema } from '../cinder/cinder-endpoint';
import { VG_NAME_RE, type BlockDeviceSettings } from './disk-source/block-device-settings';
/** An operator's directory: the characters assertSafePath accepts, so the paths under it can pass too. */
const DirSchema = z.string().regex(/^[A-Za-z0-9._/-]+$/, 'a directory path of [A-Za-z0-9._/-]');
/** Where the demo instance's disks go under the data dir (src/stack/demo-instance.ts): the default instances path. */
export const DEMO_INSTANCES_SUBDIR = 'demo';
/** Nova's image_cache_subdirectory_name: the image cache inside the instances path. */
const IMAGE_CACHE_SUBDIR = '_base';
/** Nova's images_rbd_ceph_conf left empty: librados reads the default conf. */
export const DEFAULT_RBD_CEPH_CONF = '/etc/ceph/ceph.conf';
const count = (fallback: number) => z.coerce.number().int().min(1).max(64).default(fallback);

export const HostEnvSchema = z.object({
  SNAP_HOST: HostNameSchema.optional(),
  SNAP_LIBVIRT_URI: z.string().min(1).default('qemu:///system'),
  SNAP_LIBVIRT_SOCKET: z.string().min(1).optional(),
  SNAP_DATA_DIR: DataDirSchema,
  /** Nova's [libvirt] snapshots_directory */
  SNAP_SNAPSHOTS_DIR: z.string().min(1).optional(),
  /** Nova's instances_path: a disk's backing files must be under it or under the image cache */
  SNAP_INSTANCES_PATH: DirSchema.optional(),
  /** Nova's image cache (instances_path/_base), where the instances' base images are */
  SNAP_IMAGE_CACHE_PATH: DirSchema.optional(),
  /** Nova's [libvirt] snapshot_image_format: empty = the source's format */
  SNAP_SNAPSHOT_IMAGE_FORMAT: z.enum(['qcow2', 'raw']).optional(),
  /** Nova's [workarounds] disable_libvirt_livesnapshot */
  SNAP_DISABLE_LIVE_SNAPSHOT: EnvBooleanSchema.default('false'),
  /**
   * A cold snapshot of a running guest restarts it paused from its managed save with a backup job
   * on its disk and resumes it before the stream (src/host/saved-guest-restart.ts); false: the guest
   * stays saved until its disk has been read, as in the seed.
   */
  SNAP_COLD_RESUME_BEFORE_STREAM: EnvBooleanSchema.default('true'),
  /**
   * A full snapshot names its chunks and sends only those the store lacks (dedup across instances,
   * protocol 2). A retry after a kill re-reads the disk and sends only the chunks the service does
   * not hold yet. Off: the guest data is staged (protocol 1) and a retry goes on from its offset.
   */
  SNAP_IMAGE_NAMED_UPLOADS: EnvBooleanSchema.default('true'),
  /** keeps the block-copy + convert + upload path even where libvirt has the backup API (for comparisons) */
  SNAP_DISABLE_BACKUP_API: EnvBooleanSchema.default('false'),
  /** Nova's [ephemeral_storage_encryption] enabled: forces cold snapshots */
  SNAP_EPHEMERAL_ENCRYPTION: EnvBooleanSchema.default('false'),
  SNAP_IMAGE_URL: ImageUrlSchema,
  /** a service token for the image API (long uploads must not depend on a user token) */
  SNAP_IMAGE_TOKEN: z.string().min(1).optional(),
  SNAP_VOLUME_URL: VolumeUrlSchema,
  /** Nova's max_concurrent_snapshots */
  SNAP_MAX_CONCURRENT_SNAPSHOTS: count(5),
  SNAP_MAX_CONCURRENT_EXTRACTS: count(2),
  SNAP_MAX_CONCURRENT_UPLOADS: count(2),
  SNAP_INVENTORY_INTERVAL_S: z.coerce.number().int().min(5).max(86_400).default(60),
  /** the project of domains without <nova:owner>; unset: they belong to no project (admin-only) */
  SNAP_DEFAULT_PROJECT: z.string().min(1).max(255).regex(/^[A-Za-z0-9._-]+$/, 'a project id').optional(),
  /** bound on the guest agent's filesystem freeze (and each thaw) of a live snapshot */
  SNAP_QUIESCE_TIMEOUT_S: z.coerce.number().min(1).max(300).default(10),
  /** Proxmox's bwlimit: MiB/s shared by all the host's snapshot streams together; 0 = unlimited */
  SNAP_STREAM_BWLIMIT_MIBS: z.coerce.number().int().min(0).max(100_000).default(0),
  /** Nova's [libvirt] images_rbd_ceph_conf: the ceph.conf of the cluster holding RBD instance disks */
  SNAP_RBD_CEPH_CONF: z
    .string()
    .regex(/^\/[A-Za-z0-9._/-]*$/, 'an absolute path of [A-Za-z0-9._/-]')
    .refine((p) => !p.split('/').includes('..'), 'a path without ".."')
    .default(DEFAULT_RBD_CEPH_CONF),
  /** Nova's [libvirt] rbd_user: the cephx id (without "client.") the host reads RBD disks as; unset: the disk's <auth username> */
  SNAP_RBD_USER: CephUserSchema.optional(),
  /** directories whose block devices may be root disks (comma-separated); unset: block-device disks are refused */
  SNAP_BLOCK_DEVICE_PATHS: z
    .string()
    .transform((v) => v.split(',').filter((d) => d !== ''))
    .pipe(
      z
        .array(
          DirSchema.refine((d) => d.startsWith('/') && !d.split('/').includes('..'), 'an absolute directory without ".."')
            // /dev itself holds the host's own disks: an operator names the directories of instance disks
            .refine((d) => !['/', '/dev', '/dev/'].includes(d), 'a directory of instance disks, not / or /dev'),
        )
        .max(16),
    )
    .optional(),
  /** Nova's [libvirt] images_volume_group: admits its LVs, /dev/<vg>/<uuid>_disk */
  SNAP_LVM_VOLUME_GROUP: z.string().regex(VG_NAME_RE, 'an LVM volume group name').optional(),
  /** block-device disks live through the backup job (never when encrypted); default cold, as the seed */
  SNAP_BLOCK_DEVICE_LIVE_SNAPSHOT: EnvBooleanSchema.default('false'),
  /**
   * Incremental snapshots of RBD disks from Ceph's own change tracking: one RBD snapshot of ours
   * stays on each disk between snapshots (Nova's instance delete does not remove it: see
   * docs/incremental-snapshots.md). false: every live snapshot of an RBD disk is a full backup job.
   */
  SNAP_RBD_CHANGE_TRACKING: EnvBooleanSchema.default('true'),
  /**
   * Glance's rbd_store_pool, when the image backend is a Glance storing images in RBD in the same
   * cluster as the instance disks: RBD disks are then snapshotted as Nova's direct snapshot. Unset: off.
   */
  SNAP_GLANCE_RBD_POOL: PoolNameSchema.optional(),
});

export interface HostConfig {
  host: string;
  libvirtUri: string;
  libvirtSocket?: string;
  snapshotsDir: string;
  /** the only directories a disk's backing chain may reach into (src/host/disk-chain.ts) */
  instancesPath: string;
  imageCachePath: string;
  snapshotImageFormat?: 'qcow2' | 'raw';
  disableLiveSnapshot: boolean;
  disableBackupApi: boolean;
  /** SNAP_COLD_RESUME_BEFORE_STREAM; absent: off (the variable's default is on) */
  coldResumeBeforeStream?: boolean;
  /** SNAP_IMAGE_NAMED_UPLOADS; absent: on */
  namedUploads?: boolean;
  ephemeralEncryption: boolean;
  imageUrl: string;
  imageToken?: string;
  /** Cinder's v3 root (volume-backed instances); unset: their snapshots are refused */
  volumeUrl?: string;
  maxConcurrentSnapshots: number;
  maxConcurrentExtracts: number;
  maxConcurrentUploads: number;
  inventoryIntervalMs: number;
  /** the project of domains that name no owner; undefined: no project's (admin-only) */
  defaultProject?: string;
  quiesceTimeoutMs: number;
  /** one BandwidthLimit (src/host/bandwidth-limit.ts) per host worker; 0 = unlimited */
  streamBandwidthBytesPerSecond: number;
  /** how the host reaches the Ceph cluster of RBD-backed disks (Nova's images_rbd_ceph_conf, rbd_user) */
  rbd: {
    confPath: string;
    user?: string;
    /** SNAP_RBD_CHANGE_TRACKING; absent: on */
    changeTracking?: boolean;
    /** SNAP_GLANCE_RBD_POOL: Glance's pool in the same cluster (Nova's direct snapshot); absent: off */
    glancePool?: string;
  };
  /** where block-device (LVM) root disks may be, and whether they may go live */
  blockDevices: BlockDeviceSettings;
}

function defaultHostName(): string {
  const short = hostname().split('.')[0] ?? 'localhost';
  const parsed = HostNameSchema.safeParse(short);
  return parsed.success ? parsed.data : 'localhost';
}

export function loadHostConfig(env: NodeJS.ProcessEnv = process.env, projectRoot = process.cwd()): HostConfig {
  const e = parseEnv(HostEnvSchema, env, 'host worker');
  const dataDir = resolve(projectRoot, e.SNAP_DATA_DIR);
  const instancesPath = resolve(projectRoot, e.SNAP_INSTANCES_PATH ?? join(dataDir, DEMO_INSTANCES_SUBDIR));
  return {
    host: e.SNAP_HOST ?? defaultHostName(),
    libvirtUri: e.SNAP_LIBVIRT_URI,
    libvirtSocket: e.SNAP_LIBVIRT_SOCKET,
    snapshotsDir: resolve(projectRoot, e.SNAP_SNAPSHOTS_DIR ?? join(dataDir, 'snapshots')),
    instancesPath,
    imageCachePath: resolve(projectRoot, e.SNAP_IMAGE_CACHE_PATH ?? join(instancesPath, IMAGE_CACHE_SUBDIR)),
    snapshotImageFormat: e.SNAP_SNAPSHOT_IMAGE_FORMAT,
    disableLiveSnapshot: e.SNAP_DISABLE_LIVE_SNAPSHOT,
    disableBackupApi: e.SNAP_DISABLE_BACKUP_API,
    coldResumeBeforeStream: e.SNAP_COLD_RESUME_BEFORE_STREAM,
    namedUploads: e.SNAP_IMAGE_NAMED_UPLOADS,
    ephemeralEncryption: e.SNAP_EPHEMERAL_ENCRYPTION,
    imageUrl: e.SNAP_IMAGE_URL,
    imageToken: e.SNAP_IMAGE_TOKEN,
    volumeUrl: e.SNAP_VOLUME_URL,
    maxConcurrentSnapshots: e.SNAP_MAX_CONCURRENT_SNAPSHOTS,
    maxConcurrentExtracts: e.SNAP_MAX_CONCURRENT_EXTRACTS,
    maxConcurrentUploads: e.SNAP_MAX_CONCURRENT_UPLOADS,
    inventoryIntervalMs: e.SNAP_INVENTORY_INTERVAL_S * 1000,
    defaultProject: e.SNAP_DEFAULT_PROJECT,
    quiesceTimeoutMs: e.SNAP_QUIESCE_TIMEOUT_S * 1000,
    streamBandwidthBytesPerSecond: e.SNAP_STREAM_BWLIMIT_MIBS * 1024 * 1024,
    rbd: {
      confPath: e.SNAP_RBD_CEPH_CONF,
      ...(e.SNAP_RBD_USER !== undefined ? { user: e.SNAP_RBD_USER } : {}),
      ...(e.SNAP_RBD_CHANGE_TRACKING ? {} : { changeTracking: false }),
      ...(e.SNAP_GLANCE_RBD_POOL !== undefined ? { glancePool: e.SNAP_GLANCE_RBD_POOL } : {}),
    },
    blockDevices: {
      roots: [...(e.SNAP_BLOCK_DEVICE_PATHS ?? []), ...(e.SNAP_LVM_VOLUME_GROUP !== undefined ? [`/dev/${e.SNAP_LVM_VOLUME_GROUP}`] : [])],
      allowLive: e.SNAP_BLOCK_DEVICE_LIVE_SNAPSHOT,
    },
  };
}
