// Nova's createBackup server action (nova/api/openstack/compute/create_backup.py and its schema):
// the snapshot path with image_type backup and a backup_type, the instance in task_state
// image_backup, and the oldest backups of the type beyond `rotation` deleted once the new one is
// active (the workflow's rotate_backups step).
import { z } from 'zod';
import { isCloudAdmin } from '../auth';
import { MAX_ROTATION } from '../contract';
import { badRequest, forbidden } from './api-errors';
import { ImageMetadataSchema, ImageNameSchema, MetadataValueSchema } from './api-schemas';
import { IMAGE_ID_BODY_VERSION, atLeast, type Microversion } from './microversion';
import { visibleInstance, type ApiAnswer, type RequestContext } from './request-context';
import { requestTrust } from './volume-trust';

/**
 * Nova's parameter_types.non_negative_integer: an integer >= 0, or a string of digits (Nova's
 * int() of it). A count beyond 2^53 keeps every backup, as it would in Nova.
 */
const ROTATION_MESSAGE = 'rotation must be an integer >= 0, or a string of digits';
export const RotationSchema = z
  .union([z.number({ invalid_type_error: ROTATION_MESSAGE }).int(ROTATION_MESSAGE).min(0, ROTATION_MESSAGE), z.string({ invalid_type_error: ROTATION_MESSAGE }).regex(/^[0-9]+$/, ROTATION_MESSAGE)], {
    errorMap: () => ({ message: ROTATION_MESSAGE }),
  })
  .transform((value) => Math.min(Number(value), MAX_ROTATION))
  .describe('how many backups of this type to keep; 0 keeps none (the new one is deleted too, as in Nova)');

/**
 * Nova's create_backup schema (2.1+). `backup_type` is any string in Nova; here it becomes an image
 * property, so it follows the image property rule (at most 255 characters, no control characters).
 */
export const CreateBackupBodySchema = z
  .object({
    name: ImageNameSchema,
    backup_type: MetadataValueSchema.describe("a user-defined type, like 'daily' or 'weekly'"),
    rotation: RotationSchema,
    metadata: ImageMetadataSchema.optional(),
  })
  .strict();
export type CreateBackupBody = z.infer<typeof CreateBackupBodySchema>;

/** From 2.39 Nova no longer checks createBackup's metadata against the metadata_items quota. */
const NO_METADATA_QUOTA_VERSION: Microversion = { major: 2, minor: 39 };


export const CREATE_BACKUP_POLICY_NAME = 'os_compute_api:os-create-backup';

/** Nova's action_peek: one action per body; an unknown one is named before the schema speaks. */
export function refuseUnknownActions(body: unknown, known: readonly string[]): void {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRequest('Malformed request body');
  const actions = Object.keys(body);
  const named = actions.filter((a) => known.includes(a));
  if (named.length > 1) throw badRequest('Malformed message body: too many body keys');
  if (named.length === 0) {
    const name = actions[0];
    throw badRequest(name === undefined ? 'Malformed request body' : `There is no such action: ${name.slice(0, 64)}`);
  }
}

/** POST /v2.1/servers/{id}/action {"createBackup": …} → 202, as Nova's _create_backup answers. */
export async function createBackup(ctx: RequestContext, serverId: string, body: CreateBackupBody): Promise<ApiAnswer> {
  // Nova looks the instance up first (404), then asks the policy with its project as the target.
  const instance = await visibleInstance(ctx, serverId);
  if (ctx.services.createBackupPolicy === 'admin' && !isCloudAdmin(ctx.identity)) {
    throw forbidden(`Policy doesn't allow ${CREATE_BACKUP_POLICY_NAME} to be performed.`);
  }
  const owner = ctx.identity.projectId === null ? (instance.projectId ?? undefined) : undefined;
  const started = await ctx.services.starter.start({
    instance,
    name: body.name,
    metadata: body.metadata ?? {},
    backup: { backupType: body.backup_type, rotation: body.rotation },
    checkMetadataQuota: !atLeast(ctx.version, NO_METADATA_QUOTA_VERSION),
    images: ctx.services.imagesFor(ctx.token),
    owner,
    userId: ctx.identity.userId,
    requestId: ctx.requestId,
    projectId: ctx.identity.projectId ?? '',
    trust: requestTrust(ctx, instance),
  });
  ctx.log.info({ instance_uuid: instance.uuid, workflow_id: started.workflowId, image_id: started.imageId, backup_type: body.backup_type, rotation: body.rotation }, 'createBackup accepted');
  // Nova leaves Location out when rotation is 0: the new image is deleted by the rotation itself.
  const headers: Record<string, string> = body.rotation > 0 ? { Location: `${ctx.services.imageUrl}/v2/images/${started.imageId}` } : {};
  return atLeast(ctx.version, IMAGE_ID_BODY_VERSION) ? { status: 202, body: { image_id: started.imageId }, headers } : { status: 202, headers };
}
