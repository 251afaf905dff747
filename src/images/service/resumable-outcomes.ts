// What the resumable sessions (resumable-uploads.ts) check and write besides their state: a logical
// upload's layout at open, and the record a commit makes active (the failures' wording: upload-failures.ts).
import type { RequestContext } from './image-auth';
import { actsForSnapshotService } from './image-auth';
import { ImageConflict, badRequest } from '../client/image-errors';
import type { ImageRecord } from '../client/image-record';
import { stagedLength, type LogicalLayout } from '../client/logical-layout';
import type { ComposedImages } from '../store/composed-images';
import type { ReceivedImageData } from '../store/image-blob-store';
import { checkLayoutBounds } from '../store/layout-bounds';
import type { StagedUploadState } from '../client/resumable-wire';
import type { StagedSessionMeta } from './staged-upload-files';

/** What a commit writes besides the digests: the client's properties, and whether the snapshot service made it, with which upload. */
export interface CommitMarks {
  properties: Record<string, string>;
  byService: boolean;
  token: string;
}

/** Only the snapshot service's commit leaves its mark (snapshot_commit) and releases its write lock. */
export function commitMarks(ctx: RequestContext, session: { meta: StagedSessionMeta }): Omit<CommitMarks, 'properties'> {
  return { byService: actsForSnapshotService(ctx), token: session.meta.token };
}

export const stateOf = (s: { offset: number; meta: StagedSessionMeta }): StagedUploadState => ({ offset: s.offset, size: s.meta.size, token: s.meta.token });

/** A logical upload's layout: its size is what it stages; an incremental's parent is active, composed, the same disk. */
export async function checkOpenLayout(
  deps: { maxImageBytes: number; lookup: (ctx: RequestContext, id: string) => ImageRecord; composed: ComposedImages },
  ctx: RequestContext,
  layout: LogicalLayout,
  size: number,
): Promise<void> {
  checkLayoutBounds(layout, deps.maxImageBytes);
  const sent = stagedLength(layout);
  if (sent !== size) throw badRequest(`Invalid resumable upload: the layout sends ${sent} bytes, size says ${size}`);
  if (layout.parent === undefined) return;
  const parent = deps.lookup(ctx, layout.parent);
  if (parent.status !== 'active') throw new ImageConflict(`Image ${layout.parent} is ${parent.status}: an incremental upload needs an active parent`);
  await deps.composed.requireParent(layout.parent, layout.map.virtualSize);
}

/** What an image turns active with: its size, and its digests when known (a composed image's come after). */
export type ActivatedData = Omit<ReceivedImageData, 'md5' | 'sha512'> & { md5: string | null; sha512: string | null };

/** The uploading record as it turns active with its bytes' facts and the commit's marks. */
export function activeRecord(current: ImageRecord, digests: ActivatedData, commit: CommitMarks, updatedAt: string): ImageRecord {
  const { snapshot_write_lock: lock, snapshot_commit: _earlier, ...rest } = current;
  return {
    ...rest,
    status: 'active',
    size: digests.size,
    checksum: digests.md5,
    os_hash_algo: digests.sha512 === null ? null : 'sha512',
    os_hash_value: digests.sha512,
    properties: { ...current.properties, ...commit.properties },
    updated_at: updatedAt,
    ...(commit.byService ? { snapshot_commit: commit.token } : lock !== undefined ? { snapshot_write_lock: lock } : {}),
  };
}
