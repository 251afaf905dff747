// The Glance v2 JSON representation of an image: properties flattened into top-level keys plus
// the self/file/schema links. Rendered by our server, parsed by the client (which may be talking
// to a real Glance, so parsing tolerates fields we never produce).
import { z } from 'zod';
import type { ImageRecord } from './image-record';

export interface GlanceImageView {
  [key: string]: unknown;
  id: string;
  status: string;
}

export function toGlanceView(record: ImageRecord): GlanceImageView {
  const { properties, ...core } = record;
  return {
    ...properties,
    ...core,
    virtual_size: null,
    self: `/v2/images/${record.id}`,
    file: `/v2/images/${record.id}/file`,
    schema: '/v2/schemas/image',
  };
}

/** An image as a client sees it. Custom properties are collected from top-level string keys. */
export interface Image {
  id: string;
  name: string | null;
  status: string;
  container_format: string | null;
  disk_format: string | null;
  visibility: string;
  owner: string | null;
  size: number | null;
  checksum: string | null;
  os_hash_algo: string | null;
  os_hash_value: string | null;
  created_at: string;
  updated_at: string;
  properties: Record<string, string>;
  /**
   * Our image service only: the upload token of the commit the snapshot service made active, set
   * by the service and by nothing a request carries. A real Glance never sends it.
   */
  snapshot_commit?: string;
  /** Our image service only: 'service' while only the snapshot service may write the image. */
  snapshot_write_lock?: string;
}

const ViewSchema = z
  .object({
    id: z.string(),
    name: z.string().nullable().default(null),
    status: z.string(),
    container_format: z.string().nullable().default(null),
    disk_format: z.string().nullable().default(null),
    visibility: z.string().default('shared'),
    owner: z.string().nullable().default(null),
    size: z.number().nullable().default(null),
    checksum: z.string().nullable().default(null),
    os_hash_algo: z.string().nullable().default(null),
    os_hash_value: z.string().nullable().default(null),
    created_at: z.string(),
    updated_at: z.string(),
    snapshot_commit: z.string().optional(),
    snapshot_write_lock: z.string().optional(),
  })
  .passthrough();

// Standard Glance attributes that are not custom properties even though some are strings.
const NON_PROPERTY_KEYS = new Set([
  'id', 'name', 'status', 'container_format', 'disk_format', 'visibility', 'owner', 'size', 'virtual_size',
  'checksum', 'os_hash_algo', 'os_hash_value', 'created_at', 'updated_at', 'min_disk', 'min_ram',
  'protected', 'tags', 'self', 'file', 'schema', 'direct_url', 'locations', 'os_hidden', 'stores',
  'snapshot_commit', 'snapshot_write_lock',
]);

export function imageFromView(json: unknown): Image {
  const v = ViewSchema.parse(json);
  const properties: Record<string, string> = {};
  for (const [key, value] of Object.entries(v)) {
    if (!NON_PROPERTY_KEYS.has(key) && typeof value === 'string') properties[key] = value;
  }
  return {
    id: v.id,
    name: v.name,
    status: v.status,
    container_format: v.container_format,
    disk_format: v.disk_format,
    visibility: v.visibility,
    owner: v.owner,
    size: v.size,
    checksum: v.checksum,
    os_hash_algo: v.os_hash_algo,
    os_hash_value: v.os_hash_value,
    created_at: v.created_at,
    updated_at: v.updated_at,
    properties,
    ...(v.snapshot_commit !== undefined ? { snapshot_commit: v.snapshot_commit } : {}),
    ...(v.snapshot_write_lock !== undefined ? { snapshot_write_lock: v.snapshot_write_lock } : {}),
  };
}
