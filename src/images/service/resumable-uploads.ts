// Resumable uploads of image data (the extension documented in src/images/README.md): a session
// is opened for a queued or killed image (→ uploading) with the layout of the disk it stages, takes
// appends at its committed offset, survives restarts, and is composed into the store at commit
// (→ active), killed on a verification mismatch, or discarded (→ queued). One request holds a
// session at a time.
import type { Readable } from 'node:stream';
import { parseOrThrow } from '../../config/validation';
import type { RequestContext } from './image-auth';
import type { LocalImageBlobStore } from '../store/image-blob-store';
import { ImageConflict, ImageNotFound, ImageTooLarge, ImageUploadFailed, ImageVerificationFailed, StagedOffsetMismatch, badRequest, forbidden, storageFailure } from '../client/image-errors';
import { propertyKeyRefusal, type ImageRecord, type ImageStatus } from '../client/image-record';
import type { ImageRecordRepository, RepositoryWarning } from './image-record-repository';
import { CommitStagedBodySchema, OpenStagedBodySchema, type StagedUploadState } from '../client/resumable-wire';
import type { ComposedImages } from '../store/composed-images';
import { LOGICAL_DIGEST_PROPERTY, stagesChunkNames, type LogicalLayout } from '../client/logical-layout';
import type { NamedChunkSessions } from './named-chunk-sessions';
import { activeRecord, checkOpenLayout, type ActivatedData, commitMarks, stateOf, type CommitMarks } from './resumable-outcomes';
import type { StagedSessionMeta, StagedUploadFiles } from './staged-upload-files';
import type { ImageQuotas } from './quotas';
import { errorMessage, errnoCode } from '../../contract';
import { appendFailure, commitFailure, deletedDuringUpload } from './upload-failures';
import { recoverSessions, type ResumableRecovery } from './resumable-recovery';

interface Session {
  meta: StagedSessionMeta;
  /** Committed bytes: written whole and fsynced. */
  offset: number;
  /** A request (open, append, commit, discard) holds the session; others get 409. */
  busy: boolean;
  /** Aborted when the image is deleted while a request holds the session; that holder cleans up. */
  doomed: AbortController;
}

export interface ResumableUploadsDeps {
  /** per-project limits: a session is Glance's staging (image_stage_total) and an upload in progress */
  quotas: ImageQuotas;
  records: ImageRecordRepository;
  blobs: LocalImageBlobStore;
  /** where logical uploads are composed into chunks */
  composed: ComposedImages;
  /** the chunk names named uploads may use */
  named: NamedChunkSessions;
  files: StagedUploadFiles;
  /** The visibility-checked image lookup (ImageService.get): 404 for images the caller cannot see. */
  lookup: (ctx: RequestContext, id: string) => ImageRecord;
  /** As lookup, and 403 when the caller may not write the image (ImageService.writable: the snapshot service's write lock). */
  writable: (ctx: RequestContext, id: string) => ImageRecord;
  maxImageBytes: number;
  /** A composed image turned active without its md5 and sha512: they are computed after (served-checksums.ts). */
  onComposedActive?: (id: string) => void;
  /** Re-read every new chunk against its name before the image turns active. */
  verify: boolean;
  timestamp: () => string;
}

export class ResumableUploads {
  private readonly sessions = new Map<string, Session>();
  /** Sessions being opened: their files and record are not durable yet, so they are not sessions yet. */
  private readonly opening = new Set<string>();

  constructor(private readonly deps: ResumableUploadsDeps) {}

  /** At open, after the image records are loaded: keeps what can be resumed, repairs the rest (resumable-recovery.ts). */
  async recover(warn: RepositoryWarning): Promise<ResumableRecovery> {
    const { resumed, report } = await recoverSessions(this.deps, warn);
    for (const [id, found] of resumed) {
      if (stagesChunkNames(found.meta.layout)) await this.deps.named.restore(id);
      this.sessions.set(id, { meta: found.meta, offset: found.committed, busy: false, doomed: new AbortController() });
    }
    return report;
  }

  /** Opens a session (created: true) or answers the existing one when size and token match. */
  async open(ctx: RequestContext, id: string, body: unknown): Promise<{ state: StagedUploadState; created: boolean }> {
    const record = this.deps.writable(ctx, id);
    const b = parseOrThrow(OpenStagedBodySchema, body, (issues) => badRequest(`Invalid resumable upload: ${issues}`), 'body');
    const existing = this.sessions.get(id);
    if (existing !== undefined) {
      if (existing.meta.size === b.size && existing.meta.token === b.token) return { state: stateOf(existing), created: false };
      throw new ImageConflict(
        `Image ${id} has a resumable upload of ${existing.meta.size} bytes under another token or size; DELETE /v2/images/${id}/resumable discards it`,
      );
    }
    const refusal = (status: ImageStatus) => new ImageConflict(`Image status transition from ${status} to uploading is not allowed`);
    // `uploading` without a session: one whose end could not be recorded (a full disk), taken like a killed one.
    const opens = (status: ImageStatus) => status === 'queued' || status === 'killed' || status === 'uploading';
    if (!opens(record.status)) throw refusal(record.status);
    if (b.size > this.deps.maxImageBytes) throw new ImageTooLarge(`Image exceeds the storage quota of ${this.deps.maxImageBytes} bytes`);
    await checkOpenLayout(this.deps, ctx, b.layout, b.size);
    if (this.sessions.has(id) || this.opening.has(id)) throw new ImageConflict(`Another request on the resumable upload of image ${id} is in progress`);
    // Glance's stage checks (and its upload's size check), on the project that owns the image.
    for (const quota of ['image_stage_total', 'image_size_total'] as const) this.deps.quotas.enforce(record.owner, quota, 0);
    this.deps.quotas.enforce(record.owner, 'image_count_uploading', 0, id);
    // Claimed before any await: a concurrent open sees the claim, a plain PUT the durable `uploading`.
    this.opening.add(id);
    const meta: StagedSessionMeta = { imageId: id, size: b.size, token: b.token, layout: b.layout };
    try {
      // The session's files first, then the record: a failure of either leaves the image as it was.
      await this.deps.files.create(meta);
      await this.deps.records.update(id, (current) => {
        if (current === undefined || current.status === 'deleted') throw deletedDuringUpload(id);
        if (!opens(current.status)) throw refusal(current.status);
        return { ...current, status: 'uploading', updated_at: this.deps.timestamp() };
      });
    } catch (err) {
      await this.deps.files.remove(id).catch(() => undefined);
      throw storageFailure(err, (detail) => new ImageUploadFailed(`The resumable upload of image ${id} could not be opened: ${detail}`, 500, { cause: err }));
    } finally {
      this.opening.delete(id);
    }
    // The staged bytes are guest data, not what anyone downloads: nothing hashes them as they arrive.
    const session: Session = { meta, offset: 0, busy: false, doomed: new AbortController() };
    if (stagesChunkNames(b.layout)) this.deps.named.start(id);
    this.sessions.set(id, session);
    return { state: stateOf(session), created: true };
  }

  /** The bytes the open session of this image stages (its declared size); undefined without one. */
  stagedBytes(id: string): number | undefined {
    return this.sessions.get(id)?.meta.size;
  }

  /** The image's open named upload, held for a chunk request: the project its known chunks come from. 409 without one. */
  namedUpload(ctx: RequestContext, id: string): { owner: string | null } {
    const record = this.deps.writable(ctx, id);
    if (!stagesChunkNames(this.require(id).meta.layout)) throw new ImageConflict(`The upload of image ${id} does not stage chunk names: it takes no chunks`);
    return { owner: record.owner };
  }

  state(ctx: RequestContext, id: string): StagedUploadState {
    this.deps.lookup(ctx, id);
    return stateOf(this.require(id));
  }

  /**
   * Appends `source` at `offset`, which must be the committed length (else StagedOffsetMismatch,
   * nothing read). Bytes past the session's size are refused (413) and not kept; every byte
   * written before a failure or a dropped connection is kept, fsynced and counted.
   */
  async append(ctx: RequestContext, id: string, offset: number, source: Readable, declaredLength?: number): Promise<StagedUploadState> {
    this.deps.writable(ctx, id);
    const session = this.claim(id);
    const { size } = session.meta;
    try {
      if (offset !== session.offset) throw new StagedOffsetMismatch(session.offset, `Upload-Offset ${offset} does not match the committed offset ${session.offset} of image ${id}`);
      if (declaredLength !== undefined && offset + declaredLength > size) {
        throw new ImageTooLarge(`Upload-Offset ${offset} plus Content-Length ${declaredLength} exceeds the upload's size of ${size} bytes`);
      }
    } catch (err) {
      session.busy = false;
      throw err;
    }
    let failure: unknown;
    try {
      // The names about to be staged may be of chunks received since the last append: durable first.
      if (stagesChunkNames(session.meta.layout)) await this.settleChunks(id);
      const outcome = await this.deps.files.append(id, session.offset, source, { limit: size, signal: session.doomed.signal });
      session.offset = outcome.committed;
      failure = outcome.error;
      if (!outcome.durable) {
        // fsync failed: what the disk holds is unknown, so the session cannot be trusted any more.
        await this.end(id, session, 'killed').catch(() => this.abandon(id));
        failure = new ImageUploadFailed(`Staged data of image ${id} could not be made durable (${errorMessage(outcome.error)}); the image is killed`, 500, { cause: outcome.error });
      }
    } finally {
      await this.release(id, session);
    }
    if (failure !== undefined) throw appendFailure(failure);
    return stateOf(session);
  }

  /**
   * Composes a complete session into the store as the image's data (publishComposed), then active;
   * a verification mismatch kills the image (ImageVerificationFailed).
   */
  async commit(ctx: RequestContext, id: string, body: unknown): Promise<ImageRecord> {
    this.deps.writable(ctx, id);
    const b = parseOrThrow(CommitStagedBodySchema, body, (issues) => badRequest(`Invalid commit: ${issues}`), 'body');
    for (const key of Object.keys(b.properties ?? {})) {
      const refusal = propertyKeyRefusal(key);
      if (refusal !== undefined) throw forbidden(refusal);
    }
    const session = this.claim(id);
    let releaseParent: (() => void) | undefined;
    try {
      const layout = session.meta.layout;
      const parent = layout.parent;
      if (parent !== undefined) releaseParent = this.deps.composed.holdParent(parent, id);
      if (session.offset !== session.meta.size) {
        throw new ImageConflict(`Upload of image ${id} is incomplete: ${session.offset} of ${session.meta.size} bytes committed`);
      }
      const commit: CommitMarks = { properties: b.properties ?? {}, ...commitMarks(ctx, session) };
      if (session.doomed.signal.aborted) throw deletedDuringUpload(id);
      if (stagesChunkNames(layout)) await this.settleChunks(id);
      return await this.publishComposed(id, session, layout, commit);
    } finally {
      releaseParent?.();
      await this.release(id, session);
    }
  }

  /** Discards the session and its bytes; the image goes back to queued. */
  async discard(ctx: RequestContext, id: string): Promise<void> {
    this.deps.writable(ctx, id);
    const session = this.claim(id);
    try {
      await this.end(id, session, 'queued');
    } finally {
      await this.release(id, session);
    }
  }

  /** The image was deleted: its session goes now, or when the request holding it ends. */
  async forget(id: string): Promise<void> {
    const session = this.sessions.get(id);
    if (session === undefined) return;
    if (session.busy) {
      session.doomed.abort();
      return;
    }
    this.drop(id);
    await this.deps.files.remove(id);
  }

  /**
   * Commits a logical upload: chunks and index composed (and, with verification on, every new
   * chunk re-read against its name), the served bytes' digests fixed, then active. A logical
   * digest the client sent must be the composed disk's.
   */
  private async publishComposed(id: string, session: Session, layout: LogicalLayout, commit: CommitMarks): Promise<ImageRecord> {
    const { composed, files } = this.deps;
    try {
      const mayName = (hex: string): boolean => this.deps.named.mayName(id, hex);
      const out = await composed.commit({ id, layout, stagedPath: files.dataPath(id), verify: this.deps.verify, mayName });
      const claimed = commit.properties[LOGICAL_DIGEST_PROPERTY];
      if (claimed !== undefined && claimed !== out.logicalDigest) {
        throw new ImageVerificationFailed(`Verification of image ${id} failed: the composed disk's digest ${out.logicalDigest} is not the sender's ${claimed}; the image is killed`);
      }
      // Active before its md5 and sha512 are known (null, as Glance's images added by location): the background pass sets them.
      const active = await this.activate(id, { size: out.size, md5: null, sha512: null }, { ...commit, properties: { ...commit.properties, [LOGICAL_DIGEST_PROPERTY]: out.logicalDigest } });
      this.drop(id);
      await files.remove(id).catch(() => undefined);
      this.deps.onComposedActive?.(id);
      return active;
    } catch (err) {
      await composed.removeIndex(id).catch(() => undefined);
      // The service's own storage failed (a full disk, an I/O error), not the data: the staged
      // bytes and the session stay, the image stays uploading, and the same commit is tried again.
      if (errnoCode(err) !== undefined && this.deps.records.get(id)?.status === 'uploading') throw commitFailure(id, err);
      await this.end(id, session, 'killed').catch(() => this.abandon(id));
      throw commitFailure(id, err);
    }
  }

  /** The uploading image turns active with the digests of its bytes, by one durable write; ImageGone when it was deleted meanwhile. */
  private activate(id: string, digests: ActivatedData, commit: CommitMarks): Promise<ImageRecord> {
    return this.deps.records.update(id, (current) => {
      if (current?.status !== 'uploading') throw deletedDuringUpload(id);
      return activeRecord(current, digests, commit, this.deps.timestamp());
    });
  }

  /** The named upload's received chunks made durable (NamedChunkSessions.settle); a failure of the service's storage is a 500 that changes nothing staged. */
  private async settleChunks(id: string): Promise<void> {
    try {
      await this.deps.named.settle(id);
    } catch (err) {
      throw storageFailure(err, (detail) => new ImageUploadFailed(`The chunks received for image ${id} could not be made durable: ${detail}`, 500, { cause: err }));
    }
  }

  /** Forgets the session. */
  private drop(id: string): void {
    this.sessions.delete(id);
    this.deps.named.drop(id);
  }

  /** The session, held by the caller: 404 when there is none, 409 while another request holds it. */
  private claim(id: string): Session {
    const session = this.require(id);
    if (session.busy) throw new ImageConflict(`Another request on the resumable upload of image ${id} is in progress`);
    session.busy = true;
    return session;
  }

  private require(id: string): Session {
    const session = this.sessions.get(id);
    if (session === undefined) throw new ImageNotFound(id, `Image ${id} has no resumable upload`);
    return session;
  }

  /**
   * Ends the session: the uploading image moved to `status` (one durable write), then the session
   * and its files go. When that write fails nothing changes: the session stays, as on disk.
   */
  private async end(id: string, session: Session, status: ImageStatus): Promise<void> {
    const current = this.deps.records.get(id);
    if (current?.status === 'uploading') {
      await this.deps.records.update(id, (now) => (now?.status === 'uploading' ? { ...now, status, updated_at: this.deps.timestamp() } : now ?? current));
    }
    if (this.sessions.get(id) === session) this.drop(id);
    await this.deps.files.remove(id);
  }

  /** Forgets a session that cannot go on whatever its record says; a record left uploading takes a new open. */
  private async abandon(id: string): Promise<void> {
    this.drop(id);
    await this.deps.files.remove(id).catch(() => undefined);
  }

  /** Lets go of the session; when the image was deleted meanwhile, removes it and answers 410. */
  private async release(id: string, session: Session): Promise<void> {
    session.busy = false;
    if (!session.doomed.signal.aborted) return;
    if (this.sessions.get(id) === session) this.drop(id);
    await this.deps.files.remove(id);
    throw deletedDuringUpload(id);
  }
}
