// The persisted image record and the Glance v2 request body that creates one. The record is what
// survives restarts; its zod schema guards the files read back from disk.
import { z } from 'zod';
import { issueText } from '../../config/validation';
import { hasControlCharacter, NO_CONTROL_CHARACTERS_MESSAGE, withoutControlCharacters } from '../../contract';

// `uploading` is Glance's status of an image whose data is staged but not yet final (its
// interoperable import); here it marks an open resumable upload (resumable-uploads.ts).
export const IMAGE_STATUSES = ['queued', 'saving', 'uploading', 'active', 'killed', 'deleted'] as const;
export type ImageStatus = (typeof IMAGE_STATUSES)[number];

// Glance v2's allowed values (glance/api/v2/images.py get_base_properties).
export const CONTAINER_FORMATS = ['ami', 'ari', 'aki', 'bare', 'ovf', 'ova', 'docker', 'compressed'] as const;
export const DISK_FORMATS = ['ami', 'ari', 'aki', 'vhd', 'vhdx', 'vmdk', 'raw', 'qcow2', 'vdi', 'iso', 'ploop'] as const;
export const VISIBILITIES = ['public', 'private', 'shared', 'community'] as const;

export const ImageIdSchema = z.string().uuid();

/** The one holder of an image's write lock: the snapshot service's identity (image-auth.ts). */
export const SNAPSHOT_WRITE_LOCK = 'service';

export const ImageRecordSchema = z.object({
  id: ImageIdSchema,
  name: z.string().nullable(),
  status: z.enum(IMAGE_STATUSES),
  container_format: z.enum(CONTAINER_FORMATS).nullable(),
  disk_format: z.enum(DISK_FORMATS).nullable(),
  visibility: z.enum(VISIBILITIES),
  owner: z.string().nullable(),
  size: z.number().int().nonnegative().nullable(),
  checksum: z.string().nullable(),
  os_hash_algo: z.string().nullable(),
  os_hash_value: z.string().nullable(),
  min_disk: z.number().int().nonnegative(),
  min_ram: z.number().int().nonnegative(),
  protected: z.boolean(),
  tags: z.array(z.string()),
  properties: z.record(z.string()),
  created_at: z.string(),
  updated_at: z.string(),
  /**
   * 'service' while the snapshot service alone may write the image's data and attributes (set at
   * creation, released when the service's commit makes it active). Records from before it: none.
   */
  snapshot_write_lock: z.literal(SNAPSHOT_WRITE_LOCK).optional(),
  /**
   * The upload token of the resumable commit that made the image active, when the snapshot service
   * made it: the worker's proof that the bytes are its own. Never set from a request's body.
   */
  snapshot_commit: z.string().optional(),
  /**
   * Set by the store when a chunk of the image was found damaged (its bytes no longer hash to its
   * name, or it is gone): when, where it was found (a download, a verify job) and which chunk. The
   * image is not served whole any more. Never set from a request's body.
   */
  snapshot_damaged: z.string().optional(),
});
export type ImageRecord = z.infer<typeof ImageRecordSchema>;

/**
 * Attributes Glance computes itself; naming one in a create body is refused (403 in Glance) rather
 * than silently stored as a custom property that would shadow the real value.
 */
export const READ_ONLY_ATTRIBUTES: ReadonlySet<string> = new Set([
  'status',
  'size',
  'virtual_size',
  'checksum',
  'os_hash_algo',
  'os_hash_value',
  'created_at',
  'updated_at',
  'self',
  'file',
  'schema',
  'direct_url',
  'locations',
  'deleted',
  'deleted_at',
  'properties',
  'snapshot_commit',
  'snapshot_damaged',
]);

/** Custom property values, as create accepts them. */
export const PropertyValueSchema = withoutControlCharacters(z.string().max(65535, 'custom property values are limited to 65535 characters'));
/** Custom property names: the record's keys, checked like the values. */
export const PropertyKeySchema = withoutControlCharacters(z.string());

const KNOWN_CREATE_FIELDS = {
  id: ImageIdSchema.optional(),
  name: withoutControlCharacters(z.string().max(255)).nullable().optional(),
  container_format: z.enum(CONTAINER_FORMATS).nullable().optional(),
  disk_format: z.enum(DISK_FORMATS).nullable().optional(),
  visibility: z.enum(VISIBILITIES).optional(),
  owner: z.string().min(1).max(255).nullable().optional(),
  min_disk: z.number().int().nonnegative().optional(),
  min_ram: z.number().int().nonnegative().optional(),
  protected: z.boolean().optional(),
  tags: z.array(z.string().max(255)).max(128).optional(),
  /** Any creator may hand the write to the snapshot service: it only takes rights from the owner. */
  snapshot_write_lock: z.literal(SNAPSHOT_WRITE_LOCK).optional(),
};

/** Create body: the known fields plus any extra top-level string keys, which become properties (as in Glance). */
export const CreateImageBodySchema = z
  .object(KNOWN_CREATE_FIELDS)
  .catchall(PropertyValueSchema)
  .refine((body) => !Object.keys(body).some(hasControlCharacter), { message: `property names ${NO_CONTROL_CHARACTERS_MESSAGE}` });

export type CreateImageBody = z.infer<typeof CreateImageBodySchema>;

/** The extra top-level keys of a create body: Glance's custom properties. */
export function customPropertiesOf(body: CreateImageBody): Record<string, string> {
  const properties: Record<string, string> = {};
  for (const [key, value] of Object.entries(body)) {
    if (!Object.hasOwn(KNOWN_CREATE_FIELDS, key) && typeof value === 'string') properties[key] = value;
  }
  return properties;
}

/**
 * Why `key` may not be a custom property (create's own rule): read-only or reserved attributes are
 * refused; undefined when the key is free. Core attributes (name, visibility…) are not properties either.
 */
export function propertyKeyRefusal(key: string): string | undefined {
  if (READ_ONLY_ATTRIBUTES.has(key)) return `Attribute '${key}' is read-only.`;
  if (key.startsWith('os_glance')) return `Attribute '${key}' is reserved.`;
  if (Object.hasOwn(KNOWN_CREATE_FIELDS, key)) return `Attribute '${key}' is a core attribute, not a custom property.`;
  return undefined;
}

/** What the snapshot path may still change on an image without data (Glance PATCH replace). */
export interface ImageFormats {
  disk_format?: (typeof DISK_FORMATS)[number];
  container_format?: (typeof CONTAINER_FORMATS)[number];
}

/** What a PATCH may change: the formats (before the image has data) and `protected` (any time). */
export interface ImagePatch extends ImageFormats {
  protected?: boolean;
  /** Glance's `add` of custom properties (Nova writes a volume-backed snapshot's block_device_mapping so) */
  properties?: Record<string, string>;
}

export const JSON_PATCH_MEDIA_TYPE = 'application/openstack-images-v2.1-json-patch';

const PATCH_OPS = z.enum(['replace', 'add']);
const ImagePatchSchema = z
  .array(
    z.discriminatedUnion('path', [
      z.object({ op: PATCH_OPS, path: z.literal('/disk_format'), value: z.enum(DISK_FORMATS) }).strict(),
      z.object({ op: PATCH_OPS, path: z.literal('/container_format'), value: z.enum(CONTAINER_FORMATS) }).strict(),
      z.object({ op: PATCH_OPS, path: z.literal('/protected'), value: z.boolean() }).strict(),
    ]).or(
      z
        .object({ op: z.literal('add'), path: z.string().regex(/^\/[^/~]+$/, 'a custom property path is /<name>'), value: PropertyValueSchema })
        .strict()
        .transform((op) => ({ property: op.path.slice(1), value: op.value })),
    ),
  )
  .min(1)
  .max(16);

/** Parses a Glance JSON patch limited to the format attributes, `protected` and adding custom properties; other paths are refused. */
export function imagePatchFrom(body: unknown): ImagePatch | string {
  const parsed = ImagePatchSchema.safeParse(body);
  if (!parsed.success) return issueText(parsed.error, 'patch');
  const patch: ImagePatch = {};
  for (const op of parsed.data) {
    if ('property' in op) {
      const refusal = propertyKeyRefusal(op.property);
      if (refusal !== undefined) return refusal;
      patch.properties = { ...patch.properties, [op.property]: op.value };
    } else if (op.path === '/disk_format') patch.disk_format = op.value;
    else if (op.path === '/container_format') patch.container_format = op.value;
    else patch.protected = op.value;
  }
  return patch;
}
