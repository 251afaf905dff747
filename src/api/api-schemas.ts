// Request and response shapes of the compute and ops APIs. Handlers validate with these and the
// OpenAPI document is generated from them, so the two cannot drift apart.
import { z } from 'zod';
import { HostNameSchema, withoutControlCharacters } from '../contract';

// ---- requests -------------------------------------------------------------------------------

/** Nova's jsonschema counts characters (code points); zod's max counts UTF-16 units. */
const atMostCharacters = (max: number) => (value: string) => [...value].length <= max;

/**
 * Nova's parameter_types.metadata: keys match its pattern, values are strings of up to 255
 * characters. Python's `$` also matches before a final newline, so Nova lets "key\n" through;
 * JavaScript's does not, and such a key is refused here. Values become image properties that
 * terminals, logs and listings show, so control characters are refused in them, as the image
 * service refuses them (Nova itself does not restrict a value's characters).
 */
export const MetadataKeySchema = z.string().regex(/^[a-zA-Z0-9-_:. ]{1,255}$/, 'metadata keys are 1-255 of letters, digits, - _ : . and space');
export const MetadataValueSchema = withoutControlCharacters(z.string().refine(atMostCharacters(255), 'String must contain at most 255 character(s)'));
/** The item-count quota is configurable, so it is checked after the schema (Nova answers 403 for it). */
export const ImageMetadataSchema = z.record(MetadataKeySchema, MetadataValueSchema);

/**
 * Nova's valid_name_regex: every character printable (no category C, no line or paragraph
 * separator), none above U+FFFF (Nova builds its class from the Basic Multilingual Plane only),
 * and no space separator (Zs) first or last. Unlike Python's `$`, this one refuses a final newline.
 */
const NOVA_NAME_RE = /^(?!\p{Zs})[^\p{C}\p{Zl}\p{Zp}\u{10000}-\u{10FFFF}]*(?<!\p{Zs})$/u;

/** Nova's InvalidName text, answered as the whole fault message instead of a field detail. */
export const INVALID_NAME_MESSAGE = "An invalid 'name' value was provided. The name must be: printable characters. Can not start or end with whitespace.";

/** Issue param marking a message that is already Nova's whole fault text. */
export const WHOLE_FAULT_PARAM = 'wholeFaultMessage';

/**
 * Nova's parameter_types.name: 1-255 characters of the format above. The length is in UTF-16
 * units; it equals Nova's character count for every name the format accepts.
 */
export const ImageNameSchema = z
  .string()
  .min(1)
  .max(255)
  .refine((name) => NOVA_NAME_RE.test(name), { message: INVALID_NAME_MESSAGE, params: { [WHOLE_FAULT_PARAM]: true } })
  .describe('printable characters, no leading or trailing whitespace');

export const CreateImageBodySchema = z.object({ name: ImageNameSchema, metadata: ImageMetadataSchema.optional() }).strict();

export const CreateImageActionSchema = z
  .object({
    createImage: CreateImageBodySchema,
  })
  .strict()
  .describe('Server action createImage (snapshot)');
export type CreateImageAction = z.infer<typeof CreateImageActionSchema>;

export const ServerIdSchema = z.string().uuid();
export const WorkflowIdSchema = z.string().regex(/^snapshot-[0-9a-fA-F-]{36}$/, 'a snapshot workflow id (snapshot-<instance uuid>)');

export const SNAPSHOT_STATES = ['running', 'failed', 'completed'] as const;
export const OpsSnapshotsQuerySchema = z
  .object({
    state: z.enum(SNAPSHOT_STATES).optional(),
    instance: ServerIdSchema.optional(),
    host: HostNameSchema.optional(),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
  })
  .strict();
export type OpsSnapshotsQuery = z.infer<typeof OpsSnapshotsQuerySchema>;

export const ServersQuerySchema = z
  .object({
    /** Admins only, as in Nova: list every project's servers. */
    all_tenants: z.enum(['1', 'true', 'True', '0', 'false', 'False']).optional(),
  })
  .passthrough();

// ---- responses -------------------------------------------------------------------------------

export const LinkSchema = z.object({ rel: z.string(), href: z.string() });

export const ServerSummarySchema = z.object({ id: z.string(), name: z.string(), links: z.array(LinkSchema) });

const EmbeddedFlavorSchema = z.object({
  original_name: z.string(),
  vcpus: z.number().int(),
  ram: z.number().int().describe('MiB'),
  disk: z.number().int().describe('GiB'),
  ephemeral: z.number().int().describe('GiB'),
  swap: z.number().int().describe('MiB'),
});

export const ServerDetailSchema = ServerSummarySchema.extend({
  status: z.string(),
  tenant_id: z.string(),
  user_id: z.string(),
  hostId: z.string().describe("sha224 of project and host, as Nova's generate_hostid"),
  image: z.union([z.object({ id: z.string(), links: z.array(LinkSchema) }), z.literal('')]),
  flavor: z.union([EmbeddedFlavorSchema, z.object({ id: z.string(), links: z.array(LinkSchema) })]).describe('embedded from 2.47; before, {id, links} with the flavor name as id (a domain records no flavor id)'),
  created: z.string(),
  updated: z.string(),
  metadata: z.record(z.string()),
  addresses: z.record(z.array(z.object({ version: z.number().int(), addr: z.string() }))),
  accessIPv4: z.string(),
  accessIPv6: z.string(),
  'os-extended-volumes:volumes_attached': z.array(z.object({ id: z.string() })),
  'OS-EXT-STS:task_state': z.string().nullable(),
  'OS-EXT-STS:vm_state': z.string(),
  'OS-EXT-STS:power_state': z.number().int(),
  'OS-EXT-SRV-ATTR:host': z.string().optional().describe('admins only'),
  'OS-EXT-SRV-ATTR:instance_name': z.string().optional().describe('admins only'),
  locked: z.boolean().optional().describe('2.9 and later'),
  description: z.string().nullable().optional().describe('2.19 and later'),
  tags: z.array(z.string()).optional().describe('2.26 and later'),
  trusted_image_certificates: z.array(z.string()).nullable().optional().describe('2.63 and later'),
  server_groups: z.array(z.string()).optional().describe('2.71 and later'),
  locked_reason: z.string().nullable().optional().describe('2.73 and later'),
  pinned_availability_zone: z.string().nullable().optional().describe('2.96 and later'),
});
export type ServerDetail = z.infer<typeof ServerDetailSchema>;

export const ServersResponseSchema = z.object({ servers: z.array(ServerSummarySchema) });
export const ServersDetailResponseSchema = z.object({ servers: z.array(ServerDetailSchema) });
export const ServerResponseSchema = z.object({ server: ServerDetailSchema });
export const CreateImageResponseSchema = z.object({ image_id: z.string().uuid() }).describe('microversion 2.45 and later; empty body before');

export const FaultSchema = z
  .record(z.object({ code: z.number().int(), message: z.string() }))
  .describe('Nova fault: {"badRequest"|"itemNotFound"|"conflictingRequest"|...: {code, message}}');

export const SnapshotProgressSchema = z.object({
  step: z.string(),
  bytesDone: z.number(),
  bytesTotal: z.number(),
  mode: z.enum(['live', 'cold']).optional(),
  host: z.string().optional(),
  imageId: z.string().optional(),
  steps: z.record(z.number()),
  error: z.string().optional(),
});

export const SnapshotRunSchema = z.object({
  workflowId: z.string(),
  runId: z.string(),
  state: z.enum(['running', 'failed', 'completed', 'other']),
  status: z.string().describe('Temporal execution status'),
  instanceUuid: z.string().nullable(),
  host: z.string().nullable(),
  imageId: z.string().nullable(),
  step: z.string().nullable(),
  startTime: z.string(),
  closeTime: z.string().nullable(),
  temporalUiUrl: z.string(),
});
export type SnapshotRun = z.infer<typeof SnapshotRunSchema>;

/** What a completed run made: the image, and whether it is full or incremental and why. */
export const SnapshotRunResultSchema = z.object({
  imageId: z.string(),
  status: z.string(),
  size: z.number(),
  mode: z.string(),
  kind: z.enum(['full', 'incremental']).optional(),
  fullReason: z.string().optional(),
  parentImageId: z.string().optional(),
  changedBytes: z.number().optional(),
});

export const SnapshotRunDetailSchema = SnapshotRunSchema.extend({
  temporalUiUrl: z.string().nullable().describe('null for members: an internal URL'),
  name: z.string().nullable(),
  progress: SnapshotProgressSchema.nullable(),
  error: z.string().nullable().describe('admins: the failure text; members: its type and a fixed sentence'),
  result: SnapshotRunResultSchema.nullable(),
});
export type SnapshotRunDetail = z.infer<typeof SnapshotRunDetailSchema>;

export const SnapshotsResponseSchema = z.object({ snapshots: z.array(SnapshotRunSchema) });
export const SnapshotResponseSchema = z.object({ snapshot: SnapshotRunDetailSchema });
export const RetryResponseSchema = z.object({ snapshot: SnapshotRunSchema.pick({ workflowId: true, runId: true, temporalUiUrl: true }).extend({ imageId: z.string(), instanceUuid: z.string() }) });
export const HostsResponseSchema = z.object({
  hosts: z.array(z.object({ host: z.string(), servers: z.number().int(), busy: z.number().int().describe('servers with a task_state set') })),
});
