// Nova's compute API _create_image for snapshots: a queued, private image record carrying the
// instance's base-image properties, the user's metadata and the snapshot markers. Shared by the
// API's createImage path and the control worker's createSnapshotImage activity (runs started
// without an image, e.g. from the Temporal UI), so both make the same record.
import type { Image } from './glance-image-view';
import type { CreateImageRequest, ImageClient } from './image-client';
import { ImageConflict, ImageNotFound } from './image-errors';
import { SNAPSHOT_WRITE_LOCK } from './image-record';

/**
 * Keys a user's metadata may not use: they are Glance core attributes, which the image service
 * would interpret (or refuse) instead of storing as properties.
 */
export const RESERVED_IMAGE_KEYS: ReadonlySet<string> = new Set([
  'id', 'name', 'status', 'container_format', 'disk_format', 'visibility', 'owner', 'size', 'virtual_size', 'checksum',
  'os_hash_algo', 'os_hash_value', 'created_at', 'updated_at', 'min_disk', 'min_ram', 'protected', 'tags', 'self', 'file',
  'schema', 'direct_url', 'locations', 'deleted', 'deleted_at', 'properties', 'snapshot_commit', 'snapshot_damaged', 'snapshot_write_lock',
]);

/** The property that names the schedule a scheduled backup was made by (the service's word, never a user's). */
export const BACKUP_SCHEDULE_PROPERTY = 'backup_schedule_id';

/** Base-image properties that describe that image's own storage, not the snapshot (Nova's non-inheritable props). */
const NOT_INHERITED = new Set(['image_type', 'backup_type', BACKUP_SCHEDULE_PROPERTY, 'instance_uuid', 'base_image_ref', 'image_location', 'image_state', 'owner_id', 'user_id', 'block_device_mapping', 'bdm_v2', 'root_device_name']);

export function isReservedImageKey(key: string): boolean {
  return RESERVED_IMAGE_KEYS.has(key) || key.startsWith('os_glance');
}

/**
 * The snapshot's own `snapshot_*` properties are the service's to write at commit: one that the
 * base image or the user's metadata carried would otherwise pass for the service's word.
 */
function isServiceMarkerKey(key: string): boolean {
  return key.startsWith('snapshot_') || key === BACKUP_SCHEDULE_PROPERTY;
}

/** The instance being snapshotted, as far as its image record needs it. */
export interface SnapshotSource {
  uuid: string;
  /** the base image the instance was built from, null when unknown */
  imageRef: string | null;
}

export interface SnapshotImageOptions {
  /** Owner project of the new image; default: the project of the token behind `images` (Nova's behaviour). */
  owner?: string;
  /** The requesting user, recorded as Nova's `user_id` property; left out when the identity has none (the token file). */
  userId?: string;
  /** Nova's backup(): the image is `image_type: backup` with this `backup_type`, which rotation selects by. */
  backupType?: string;
  /**
   * The new image's id, chosen by the caller: a repeat of the same creation (a retried activity)
   * answers the image the first made, as long as that image is a snapshot of the same instance.
   */
  id?: string;
  /** A scheduled backup: the schedule that made it, recorded as `backup_schedule_id`. */
  backupScheduleId?: string;
}

/**
 * Creates the record. `images` acts as the caller; a base image the caller cannot see (deleted,
 * foreign) is skipped, as Nova keeps the base properties in system_metadata and never needs it.
 * Image service failures propagate as the image client's typed errors.
 */
export async function createSnapshotImageRecord(
  images: ImageClient,
  instance: SnapshotSource,
  name: string,
  metadata: Record<string, string>,
  options: SnapshotImageOptions = {},
): Promise<Image> {
  const base = instance.imageRef === null ? undefined : await baseImage(images, instance.imageRef);
  const inherited: Record<string, string> = {};
  for (const [key, value] of Object.entries(base?.properties ?? {})) {
    if (!NOT_INHERITED.has(key) && !isReservedImageKey(key) && !isServiceMarkerKey(key)) inherited[key] = value;
  }
  const userMetadata: Record<string, string> = {};
  for (const [key, value] of Object.entries(metadata)) if (!isReservedImageKey(key) && !isServiceMarkerKey(key)) userMetadata[key] = value;
  const properties: Record<string, string> = {
    ...inherited,
    ...userMetadata,
    // Markers last: they identify the snapshot and must not be spoofed by user metadata.
    ...(options.backupType === undefined ? { image_type: 'snapshot' } : { image_type: 'backup', backup_type: options.backupType }),
    ...(options.backupType === undefined || options.backupScheduleId === undefined ? {} : { [BACKUP_SCHEDULE_PROPERTY]: options.backupScheduleId }),
    instance_uuid: instance.uuid,
    base_image_ref: instance.imageRef ?? '',
    ...(options.userId === undefined ? {} : { user_id: options.userId }),
  };
  // `owner` travels as a top-level Glance attribute; only an admin token may set it.
  if (options.owner !== undefined) properties.owner = options.owner;
  const meta: CreateImageRequest = { name, visibility: 'private', properties };
  // Our image service takes the write lock: until the snapshot service's commit, the owner cannot
  // write the image's data or attributes (a real Glance has no such lock; see one-pass-activities).
  if (await images.composes()) meta.snapshot_write_lock = SNAPSHOT_WRITE_LOCK;
  if (base?.container_format) meta.container_format = base.container_format;
  if (base?.disk_format) meta.disk_format = base.disk_format;
  if (options.id === undefined) return images.create(meta);
  meta.id = options.id;
  try {
    return await images.create(meta);
  } catch (err) {
    if (!(err instanceof ImageConflict)) throw err;
    const existing = await images.get(options.id);
    if (existing.properties.instance_uuid !== instance.uuid) throw err;
    return existing;
  }
}

async function baseImage(images: ImageClient, id: string): Promise<Image | undefined> {
  try {
    return await images.get(id);
  } catch (err) {
    if (err instanceof ImageNotFound) return undefined;
    throw err;
  }
}
