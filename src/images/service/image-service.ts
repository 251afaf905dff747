// Glance v2 image semantics independent of HTTP: status machine queued → saving → active (or
// killed), visibility by project, crash recovery at open, delete. The HTTP layer only translates.
// The plain upload lives in plain-uploads.ts, the resumable upload extension (queued → uploading →
// active) in resumable-uploads.ts.
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { canSee, mayChooseOwner, mayReadData, writeLockRefusal, type RequestContext } from './image-auth';
import { LocalImageBlobStore } from '../store/image-blob-store';
import { ImageConflict, ImageNotFound, badRequest, forbidden } from '../client/image-errors';
import { CreateImageBodySchema, ImageIdSchema, READ_ONLY_ATTRIBUTES, customPropertiesOf, type ImagePatch, type ImageRecord } from '../client/image-record';
import { ImageRecordRepository, type RepositoryWarning } from './image-record-repository';
import { join } from 'node:path';
import { parseOrThrow } from '../../config/validation';
import { HashPool } from '../store/hash-pool';
import { ComposedImages } from '../store/composed-images';
import { PlainUploads } from './plain-uploads';
import { NamedChunkSessions } from './named-chunk-sessions';
import { ProjectChunks } from './project-chunks';
import { ServedChecksums } from './served-checksums';
import { ResumableUploads } from './resumable-uploads';
import { presentOrGone } from './upload-failures';
import { StagedUploadFiles } from './staged-upload-files';
import { ImageQuotas, UNLIMITED_QUOTAS } from './quotas';
import { errorMessage } from '../../contract';
import { damageMarker } from './damage-marks';
import { DEFAULT_REVERIFY_AFTER_MS, StoreVerifyJobs } from './verify-jobs';
import { SharedStoreSweeps } from './shared-store-sweeps';
import { SharedRecords } from './shared-records';
import { SharedImageReads, adoptDeletions } from './shared-image-reads';
import { listImages, type ImageListFilter, type ImageListPage } from './image-listing';

export type { ImageListFilter, ImageListPage } from './image-listing';
export type { ImageServiceOptions, RecoveryReport } from './image-service-options';
import type { ImageServiceOptions, RecoveryReport } from './image-service-options';

/** Glance keeps deleted rows until an operator purges them; here a week, then they go by themselves. */
export const DEFAULT_DELETED_RETENTION_MS = 7 * 24 * 3600_000;
const PURGE_INTERVAL_MS = 10 * 60_000;
/** How often a shared store is swept: its chunks wait out the grace period anyway. */
const SHARED_SWEEP_MS = 3600_000;
export const DEFAULT_SHARED_RECORDS_TTL_MS = 5000;

export class ImageService {
  /** The resumable upload extension: open / append / commit / discard of staged uploads. */
  readonly resumable: ResumableUploads;
  private readonly verify: boolean;
  private readonly warn: RepositoryWarning;
  private readonly quotas: ImageQuotas;
  private readonly deletedRetentionMs: number;
  private purgeTimer: NodeJS.Timeout | undefined;
  /** a shared store's background mark and sweep */
  private sweeps: SharedStoreSweeps | undefined;
  private readonly sharedStore: boolean;
  /** the records of a shared store's bucket: other services' images, deletes made through them */
  private readonly shared: SharedImageReads | undefined;
  /** md5/sha512 of uploads, off the event loop (public for tests that kill its threads). */
  readonly hashes = new HashPool();
  /** Glance's plain upload (PUT …/file). */
  private readonly plain: PlainUploads;
  /** Glance's md5 and sha512 of composed images, computed after they turn active. */
  readonly checksums: ServedChecksums;
  /** The chunks named uploads send or are told their project holds (protocol 2). */
  readonly namedChunks: NamedChunkSessions;
  private recoveryReport: RecoveryReport = { removedStagingFiles: [], killedImageIds: [], resumedUploadIds: [], removedUploadSessionIds: [], removedIndexIds: [], removedChunks: 0 };

  private constructor(
    private readonly records: ImageRecordRepository,
    private readonly blobs: LocalImageBlobStore,
    private readonly composed: ComposedImages,
    files: StagedUploadFiles,
    /** The store's verify jobs: started by their schedule or by an admin (GET/POST /v2/snapshot-store/verify). */
    readonly verifyJobs: StoreVerifyJobs,
    /** Glance's image_size_cap: plain, resumable and logical uploads alike, and what a layout may describe */
    readonly maxImageBytes: number,
    private readonly now: () => Date,
    options: ImageServiceOptions,
    sharedRecords: SharedRecords | undefined,
  ) {
    this.verify = options.verifyAfterCommit ?? true;
    this.sharedStore = options.sharedStore !== undefined;
    this.shared = sharedRecords === undefined ? undefined : new SharedImageReads(records, sharedRecords, (id) => this.forgetLocalData(id));
    this.warn = options.warn ?? (() => undefined);
    this.deletedRetentionMs = options.deletedRetentionMs ?? DEFAULT_DELETED_RETENTION_MS;
    this.quotas = new ImageQuotas(options.quotas ?? UNLIMITED_QUOTAS, { records: () => records.all(), stagedBytes: (id) => this.resumable.stagedBytes(id) }, options.quotaOverrides);
    this.plain = new PlainUploads({ records, blobs, quotas: this.quotas, writable: (ctx, id) => this.writable(ctx, id), maxImageBytes, verify: this.verify, timestamp: () => this.timestamp() });
    this.namedChunks = new NamedChunkSessions(files, composed.chunks, new ProjectChunks(records, composed), () => composed.chunkBatch());
    this.checksums = new ServedChecksums({ records, composed, hashes: this.hashes, warn: this.warn });
    this.resumable = new ResumableUploads({
      named: this.namedChunks,
      onComposedActive: (id) => this.checksums.schedule(id),
      quotas: this.quotas,
      writable: (ctx, id) => this.writable(ctx, id),
      records,
      blobs,
      composed,
      files,
      lookup: (ctx, id) => this.get(ctx, id),
      maxImageBytes,
      verify: this.verify,
      timestamp: () => this.timestamp(),
    });
  }

  get recovery(): RecoveryReport {
    return this.recoveryReport;
  }

  /**
   * Loads records and repairs what a crash may have left: partial uploads are removed and their
   * images killed; resumable sessions of uploading images are kept, other sessions removed.
   */
  static async open(options: ImageServiceOptions): Promise<ImageService> {
    const warn = options.warn ?? (() => undefined);
    const sharedRecords = options.sharedStore === undefined ? undefined : new SharedRecords(options.sharedStore.records, warn, options.sharedRecordsTtlMs ?? DEFAULT_SHARED_RECORDS_TTL_MS);
    const records = await ImageRecordRepository.load(
      join(options.dataDir, 'records'),
      warn,
      sharedRecords === undefined ? undefined : { written: (r) => sharedRecords.publish(r), removed: (id) => sharedRecords.unpublish(id) },
    );
    // Deletes made through another service while this one was down, before the repair kills their images.
    if (sharedRecords !== undefined) await adoptDeletions(records, await sharedRecords.all());
    const blobs = await LocalImageBlobStore.open(options.dataDir);
    const now = options.now ?? (() => new Date());
    const markDamaged = damageMarker(records, now, warn);
    const composed = await ComposedImages.open({
      chunksDir: join(options.dataDir, 'chunks'),
      indexesDir: join(options.dataDir, 'indexes'),
      quarantineDir: join(options.dataDir, 'quarantine', 'indexes'),
      chunkQuarantineDir: join(options.dataDir, 'quarantine', 'chunks'),
      maxImageBytes: options.maxImageBytes,
      onQuarantine: async (id, reason) => {
        warn({ imageId: id, reason }, 'image index cannot be read: quarantined; the image has no data any more');
        // Its data is gone: an active image that cannot be served is killed.
        const record = records.get(id);
        if (record?.status === 'active') await records.put({ ...record, status: 'killed', updated_at: now().toISOString() });
      },
      onDamaged: (id, damage) => markDamaged(id, 'download', damage.message),
      shared: options.sharedStore,
    });
    const files = await StagedUploadFiles.open(join(options.dataDir, 'resumable'));
    const removedStagingFiles = await blobs.clearStaging();
    const killedImageIds: string[] = [];
    for (const record of records.all()) {
      const storedSize = (await blobs.sizeOf(record.id)) ?? (await composed.sizeOf(record.id));
      // saving after a restart means the upload died with the old process; an active image whose
      // file is missing or of the wrong size cannot be served correctly either.
      const broken = record.status === 'saving' || (record.status === 'active' && storedSize !== record.size);
      if (broken) {
        await blobs.remove(record.id);
        await records.put({ ...record, status: 'killed', updated_at: now().toISOString() });
        killedImageIds.push(record.id);
      } else if ((record.status === 'deleted' || record.status === 'killed' || record.status === 'queued') && storedSize !== undefined) {
        await blobs.remove(record.id);
      }
    }
    const verifyDir = join(options.dataDir, 'verify');
    const verifyJobs = await StoreVerifyJobs.open(
      {
        composed,
        dir: verifyDir,
        stampsFile: options.sharedStore === undefined ? undefined : join(verifyDir, 'chunk-stamps.sqlite'),
        isActive: (id) => records.get(id)?.status === 'active',
        markDamaged,
        warn,
        now,
      },
      { reverifyAfterMs: DEFAULT_REVERIFY_AFTER_MS, ...options.verifyJobs },
    );
    const service = new ImageService(records, blobs, composed, files, verifyJobs, options.maxImageBytes, now, options, sharedRecords);
    const resumable = await service.resumable.recover(warn);
    // Indexes of images that are not active (a deletion or a commit cut short), then their chunks.
    const collected = await service.collectChunks();
    await service.purgeDeleted();
    service.purgeTimer = setInterval(() => void service.purgeDeleted().catch((err: unknown) => warn({ err }, 'purging deleted image records failed')), Math.min(PURGE_INTERVAL_MS, Math.max(service.deletedRetentionMs, 1000)));
    service.purgeTimer.unref();
    if (options.sharedStore !== undefined) service.sweeps = new SharedStoreSweeps(() => service.collectChunks(), warn, options.sharedStoreSweepMs ?? SHARED_SWEEP_MS);
    // Checksums a stop or a crash left to compute, after the collection (which may have removed their images' data).
    await service.checksums.resume();
    service.recoveryReport = {
      removedStagingFiles,
      killedImageIds: [...killedImageIds, ...resumable.killedImageIds],
      resumedUploadIds: resumable.resumedUploadIds,
      removedUploadSessionIds: resumable.removedSessionIds,
      removedIndexIds: collected.removedIndexes,
      removedChunks: collected.removedChunks,
    };
    return service;
  }

  async create(ctx: RequestContext, body: unknown): Promise<ImageRecord> {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRequest('Request body must be a JSON object');
    for (const key of Object.keys(body)) {
      if (READ_ONLY_ATTRIBUTES.has(key)) throw forbidden(`Attribute '${key}' is read-only.`);
      if (key.startsWith('os_glance')) throw forbidden(`Attribute '${key}' is reserved.`);
    }
    const b = parseOrThrow(CreateImageBodySchema, body, (issues) => badRequest(`Invalid image: ${issues}`), 'body');
    if (b.owner !== undefined && !mayChooseOwner(ctx)) throw forbidden("Attribute 'owner' can only be set by an administrator.");
    if (b.visibility === 'public' && !ctx.isAdmin) throw forbidden('Only administrators may create public images.');

    const id = b.id ?? randomUUID();
    const exists = () => new ImageConflict(`Image with identifier ${id} already exists!`);
    if (this.records.get(id) !== undefined || (b.id !== undefined && (await this.shared?.find(id)) !== undefined)) throw exists();
    const owner = b.owner !== undefined ? b.owner : ctx.projectId;
    this.quotas.enforce(owner, 'image_count_total', 1);
    const ts = this.timestamp();
    const record: ImageRecord = {
      id,
      name: b.name ?? null,
      status: 'queued',
      container_format: b.container_format ?? null,
      disk_format: b.disk_format ?? null,
      visibility: b.visibility ?? 'shared',
      owner,
      size: null,
      checksum: null,
      os_hash_algo: null,
      os_hash_value: null,
      min_disk: b.min_disk ?? 0,
      min_ram: b.min_ram ?? 0,
      protected: b.protected ?? false,
      tags: b.tags ?? [],
      properties: customPropertiesOf(b),
      created_at: ts,
      updated_at: ts,
      ...(b.snapshot_write_lock !== undefined ? { snapshot_write_lock: b.snapshot_write_lock } : {}),
    };
    return this.records.update(id, (current) => {
      if (current !== undefined) throw exists();
      return record;
    });
  }

  /**
   * Glance's PATCH replace. /disk_format and /container_format only before the image has data
   * (the snapshot path sets the format it actually wrote); /protected and custom properties (`add`)
   * at any time, by whoever may see the image: its owner or an admin (Glance's modify_image).
   */
  async update(ctx: RequestContext, id: string, patch: ImagePatch): Promise<ImageRecord> {
    if (this.isForeign(id)) {
      await this.lookup(ctx, id);
      throw new ImageConflict(`Image ${id} belongs to another image service sharing this store; change it through that one.`);
    }
    this.writable(ctx, id);
    const formats = patch.disk_format !== undefined || patch.container_format !== undefined;
    return this.records.update(id, (current) => {
      const record = presentOrGone(id, current);
      if (formats && record.status !== 'queued' && record.status !== 'killed') {
        throw new ImageConflict(`Attribute disk_format/container_format can be only replaced for a queued image (status is ${record.status}).`);
      }
      return {
        ...record,
        disk_format: patch.disk_format ?? record.disk_format,
        container_format: patch.container_format ?? record.container_format,
        protected: patch.protected ?? record.protected,
        properties: { ...record.properties, ...patch.properties },
        updated_at: this.timestamp(),
      };
    });
  }

  get(ctx: RequestContext, id: string): ImageRecord {
    const record = ImageIdSchema.safeParse(id).success ? this.records.get(id) : undefined;
    if (record === undefined || record.status === 'deleted' || !canSee(ctx, record.owner)) throw new ImageNotFound(id);
    return record;
  }

  /**
   * get() through a shared store's records: another service's image (read-only here), or this
   * one's after a delete made elsewhere. On the local store, get().
   */
  async lookup(ctx: RequestContext, id: string, maxAgeMs?: number): Promise<ImageRecord> {
    if (this.shared === undefined || !ImageIdSchema.safeParse(id).success) return this.get(ctx, id);
    const record = await this.shared.find(id, maxAgeMs);
    if (record === undefined || record.status === 'deleted' || !canSee(ctx, record.owner)) throw new ImageNotFound(id);
    return record;
  }

  /** list() over every service's records on a shared store; on the local store, list(). */
  async listing(ctx: RequestContext, filter: ImageListFilter, page: { limit: number; marker?: string }): Promise<ImageListPage> {
    return this.shared === undefined ? this.list(ctx, filter, page) : listImages(await this.shared.all(), ctx, filter, page);
  }

  /** The image, when the caller may change its data or attributes: 403 while the snapshot service holds its write lock. */
  writable(ctx: RequestContext, id: string): ImageRecord {
    const record = this.get(ctx, id);
    const refusal = writeLockRefusal(ctx, record);
    if (refusal !== undefined) throw refusal;
    return record;
  }

  /** Newest first (Glance's default created_at desc, id desc), marker/limit paginated. */
  list(ctx: RequestContext, filter: ImageListFilter, page: { limit: number; marker?: string }): ImageListPage {
    return listImages(this.records.all(), ctx, filter, page);
  }

  async delete(ctx: RequestContext, id: string): Promise<void> {
    // Another service's image: a fresh read, so the conditional write names its current version.
    const record = this.isForeign(id) ? await this.lookup(ctx, id, 0) : this.get(ctx, id);
    if (record.protected) throw forbidden(`Image ${id} is protected and cannot be deleted.`);
    if (this.shared !== undefined && this.isForeign(id)) {
      await this.shared.deleteForeign(record, this.timestamp());
      await this.dropIndex(id);
      return;
    }
    // Status first: an upload in flight checks it on completion and discards its data.
    await this.records.update(id, (current) => ({ ...presentOrGone(id, current), status: 'deleted', updated_at: this.timestamp() }));
    await this.forgetLocalData(id);
    await this.dropIndex(id);
  }

  /** The image is deleted once its record says so; its chunks are housekeeping, reclaimed from its own index alone, which the next start's repair (or a shared store's sweep) finishes if this fails. */
  private async dropIndex(id: string): Promise<void> {
    try {
      await this.composed.removeIndex(id);
    } catch (err) {
      this.warn({ imageId: id, err: errorMessage(err) }, 'chunk collection after a delete failed; the next one finishes it');
    }
  }

  private async forgetLocalData(id: string): Promise<void> {
    await this.blobs.remove(id);
    await this.resumable.forget(id);
  }

  /** On a shared store, an image this service holds no record of (another service's, or none). */
  private isForeign(id: string): boolean {
    return this.shared !== undefined && ImageIdSchema.safeParse(id).success && this.records.get(id) === undefined;
  }

  /**
   * Removes the records of images deleted longer than the retention ago, from memory and disk.
   * Their data went at the deletion (or the start-up repair after it); the id is free again.
   */
  async purgeDeleted(): Promise<string[]> {
    const cutoff = this.now().getTime() - this.deletedRetentionMs;
    const expired = this.records.all().filter((r) => r.status === 'deleted' && Date.parse(r.updated_at) <= cutoff);
    for (const record of expired) await this.records.remove(record.id);
    return expired.map((r) => r.id);
  }

  /**
   * The store's repair pass (run at start): removes the indexes of images that are neither active
   * nor uploading, rebuilds the chunks' counts from the others, and removes every chunk they do not name. An uploading image's index is a commit's, written just before the record turns
   * active (a commit that fails removes its own; at start, recovery removes those a crash left).
   */
  collectChunks(): ReturnType<ComposedImages['collect']> {
    return this.composed.collect((id) => {
      const record = this.records.get(id);
      // An index of a shared store whose image this service has no record of is another service's.
      if (record === undefined) return this.sharedStore;
      return record.status === 'active' || record.status === 'uploading';
    });
  }

  /** Distinct chunks the installed indexes name, as counted (what a repair would rebuild). */
  get countedChunks(): number {
    return this.composed.countedChunks;
  }

  /** What the chunk store holds (bytes of chunk files), for operators and benchmarks. */
  chunkStats(): Promise<{ chunks: number; bytes: number }> {
    return this.composed.chunks.storedBytes();
  }

  /** Glance's plain `PUT /v2/images/{id}/file` (plain-uploads.ts). */
  upload(ctx: RequestContext, id: string, source: Readable, declaredLength?: number): Promise<ImageRecord> {
    return this.plain.upload(ctx, id, source, declaredLength);
  }

  /** The image's data stream, or null when it has none yet (Glance answers 204). */
  async openData(ctx: RequestContext, id: string): Promise<{ record: ImageRecord; data: Readable | null }> {
    if (!mayReadData(ctx)) throw forbidden('The snapshot service may not download image data.');
    const record = await this.lookup(ctx, id);
    if (record.status !== 'active') return { record, data: null };
    const composed = await this.composed.openData(id);
    if (composed !== null) return { record, data: composed };
    // A plain upload's data stays in its service's data dir: another service has none to serve.
    if (this.isForeign(id)) throw new ImageConflict(`Image ${id} was uploaded whole (not composed) through another image service; download it through that one.`);
    // An index found unreadable just now was quarantined and its image killed: no data to serve.
    const current = await this.lookup(ctx, id);
    if (current.status !== 'active') return { record: current, data: null };
    return { record, data: this.blobs.openRead(id) };
  }

  async close(): Promise<void> {
    clearInterval(this.purgeTimer);
    await this.sweeps?.close();
    await this.checksums.stop();
    await this.verifyJobs.close();
    await this.namedChunks.settleAll(this.warn);
    await this.records.flush();
    await this.hashes.stop();
  }

  private timestamp(): string {
    return this.now().toISOString();
  }
}
