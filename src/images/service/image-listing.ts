// Glance's image list over whichever records a service serves: the caller's visible images, newest
// first (created_at desc, id desc), filtered, marker/limit paginated.
import { canSee, type RequestContext } from './image-auth';
import { badRequest } from '../client/image-errors';
import type { ImageRecord, ImageStatus } from '../client/image-record';

export interface ImageListFilter {
  owner?: string;
  status?: ImageStatus;
  name?: string;
}

export interface ImageListPage {
  images: ImageRecord[];
  /** Id to pass as marker for the next page, when there is one. */
  nextMarker?: string;
}

export function listImages(records: ImageRecord[], ctx: RequestContext, filter: ImageListFilter, page: { limit: number; marker?: string }): ImageListPage {
  const visible = records
    .filter((r) => r.status !== 'deleted' && canSee(ctx, r.owner))
    .filter((r) => filter.owner === undefined || r.owner === filter.owner)
    .filter((r) => filter.status === undefined || r.status === filter.status)
    .filter((r) => filter.name === undefined || r.name === filter.name)
    .sort((a, b) => (a.created_at === b.created_at ? b.id.localeCompare(a.id) : b.created_at.localeCompare(a.created_at)));
  let start = 0;
  if (page.marker !== undefined) {
    const idx = visible.findIndex((r) => r.id === page.marker);
    if (idx < 0) throw badRequest(`Invalid marker. Image ${page.marker} could not be found.`);
    start = idx + 1;
  }
  const images = visible.slice(start, start + page.limit);
  const last = images[images.length - 1];
  return start + page.limit < visible.length && last !== undefined ? { images, nextMarker: last.id } : { images };
}
