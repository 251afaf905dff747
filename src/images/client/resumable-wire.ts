// The wire contract of the resumable upload extension (see src/images/README.md), shared by the
// server (resumable-http.ts) and the client (resumable-client.ts) so both parse the same shapes.
import { z } from 'zod';
import { PropertyKeySchema, PropertyValueSchema } from './image-record';
import { LogicalLayoutSchema } from './logical-layout';

/** Content-Type of a PATCH body: raw bytes that continue the staged data at Upload-Offset (as in tus). */
export const OFFSET_OCTET_STREAM = 'application/offset+octet-stream';

/** Committed length (answers) or where the body starts (PATCH requests). */
export const UPLOAD_OFFSET_HEADER = 'Upload-Offset';
/** The session's declared total size. */
export const UPLOAD_LENGTH_HEADER = 'Upload-Length';
/**
 * Set on every answer of a resumable route once the image was found. A 404 without it means no
 * such image, or a server without the extension (a real Glance), which the client must tell apart
 * from "this image has no session".
 */
export const RESUMABLE_HEADER = 'Resumable-Upload';
export const RESUMABLE_VERSION = '1';

/** Client-chosen token naming one upload attempt; a re-open with another one is a conflict. */
export const UploadTokenSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9._:-]+$/, 'token may only contain A-Z a-z 0-9 . _ : -');

export const OpenStagedBodySchema = z
  .object({
    size: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
    token: UploadTokenSchema,
    /** the disk the session stages (guest data, composed at commit); `size` is the sent pieces' length */
    layout: LogicalLayoutSchema,
  })
  .strict();
export type OpenStagedBody = z.infer<typeof OpenStagedBodySchema>;

export const CommitStagedBodySchema = z
  .object({
    properties: z.record(PropertyKeySchema, PropertyValueSchema).optional(),
  })
  .strict();
export type CommitStagedBody = z.infer<typeof CommitStagedBodySchema>;

/** Body of the open/GET answers. */
export const StagedUploadStateSchema = z.object({
  offset: z.number().int().nonnegative(),
  size: z.number().int().nonnegative(),
  token: UploadTokenSchema,
});
export type StagedUploadState = z.infer<typeof StagedUploadStateSchema>;

/** A decimal Upload-Offset header value, or undefined when absent or malformed. */
export function parseOffsetHeader(value: string | string[] | undefined): number | undefined {
  if (typeof value !== 'string' || !/^\d{1,16}$/.test(value.trim())) return undefined;
  const n = Number(value.trim());
  return Number.isSafeInteger(n) ? n : undefined;
}
