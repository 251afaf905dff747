// Per-project image quotas with Glance's names, units and rules (its unified limits,
// glance/quota/keystone.py): a check compares the project's current usage plus a delta with the
// limit, and refuses with 413 and Glance's LimitExceeded text when it is over; -1 is unlimited.
// Usage is counted from the image records (and the open resumable sessions) the service holds.
import { z } from 'zod';
import { ImageError } from '../client/image-errors';
import type { ImageRecord } from '../client/image-record';

export const IMAGE_QUOTAS = ['image_size_total', 'image_stage_total', 'image_count_total', 'image_count_uploading'] as const;
export type ImageQuota = (typeof IMAGE_QUOTAS)[number];

/** Limits per project; sizes in MiB as Glance's; -1 for unlimited. */
export type ImageQuotaLimits = Record<ImageQuota, number>;

export const QuotaLimitSchema = z.coerce.number().int().min(-1);

/** Limits of named projects that differ from the defaults (what Glance reads from Keystone per project). */
export type ProjectQuotaOverrides = Record<string, Partial<ImageQuotaLimits>>;

const OverrideSchema = z.number().int().min(-1).optional();
export const ProjectQuotaOverridesSchema = z.record(
  z.string().min(1).max(255),
  z.object({ image_size_total: OverrideSchema, image_stage_total: OverrideSchema, image_count_total: OverrideSchema, image_count_uploading: OverrideSchema }).strict(),
);

export const UNLIMITED_QUOTAS: ImageQuotaLimits = { image_size_total: -1, image_stage_total: -1, image_count_total: -1, image_count_uploading: -1 };

const MiB = 1024 * 1024;

/** A project past one of its limits: Glance's 413 with oslo.limit's ProjectOverLimit text. */
export class ImageQuotaExceeded extends ImageError {
  override readonly name = 'ImageQuotaExceeded';
  readonly status = 413;
  readonly retryable = false;
  constructor(
    readonly projectId: string,
    readonly quota: ImageQuota,
    readonly limit: number,
    readonly usage: number,
    readonly delta: number,
  ) {
    super(
      'The request returned a 413 Request Entity Too Large. This generally means that rate limiting or a quota threshold was breached.\n\n' +
        `The response body:\nProject ${projectId} is over a limit for [Resource ${quota} is over limit of ${limit} due to current usage ${usage} and delta ${delta}]`,
    );
  }
}

export interface ImageQuotaSources {
  records: () => ImageRecord[];
  /** Bytes an open resumable session of this image stages (its declared size), undefined without one. */
  stagedBytes: (id: string) => number | undefined;
}

/**
 * What counts toward each limit, for the images a project owns:
 * - image_count_total: images not deleted (killed ones too, as Glance counts every undeleted row);
 * - image_size_total: MiB of active images' data;
 * - image_stage_total: MiB the project's open resumable sessions stage;
 * - image_count_uploading: images receiving data (a plain upload `saving`, a session `uploading`).
 */
export class ImageQuotas {
  constructor(
    private readonly limits: ImageQuotaLimits,
    private readonly sources: ImageQuotaSources,
    private readonly overrides: ProjectQuotaOverrides = {},
  ) {}

  /**
   * Refuses when usage + delta is over the limit. `counting` is an image the call is about that
   * Glance would already count (it saves the new status before it checks), so the text reads as
   * Glance's. Images without an owner (admin without a project) are not limited.
   */
  enforce(projectId: string | null, quota: ImageQuota, delta: number, counting?: string): void {
    if (projectId === null) return;
    const limit = this.overrides[projectId]?.[quota] ?? this.limits[quota];
    if (limit < 0) return;
    const usage = this.usage(projectId, quota, counting);
    if (usage + delta > limit) throw new ImageQuotaExceeded(projectId, quota, limit, usage, delta);
  }

  private usage(projectId: string, quota: ImageQuota, counting: string | undefined): number {
    const owned = this.sources.records().filter((r) => r.owner === projectId && r.status !== 'deleted');
    switch (quota) {
      case 'image_count_total':
        return owned.length;
      case 'image_size_total':
        return Math.floor(owned.reduce((sum, r) => sum + (r.status === 'active' ? (r.size ?? 0) : 0), 0) / MiB);
      case 'image_stage_total':
        return Math.floor(owned.reduce((sum, r) => sum + (r.status === 'uploading' ? (this.sources.stagedBytes(r.id) ?? 0) : 0), 0) / MiB);
      case 'image_count_uploading':
        return owned.filter((r) => r.status === 'saving' || r.status === 'uploading' || r.id === counting).length;
    }
  }
}
