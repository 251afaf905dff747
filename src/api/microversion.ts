// Compute API microversions as Nova negotiates them: `OpenStack-API-Version: compute X.Y` or the
// legacy `X-OpenStack-Nova-API-Version: X.Y`; absent means the minimum, "latest" the maximum.
import type { IncomingHttpHeaders } from 'node:http';
import { ApiError } from './api-errors';

export interface Microversion {
  major: number;
  minor: number;
}

export const MIN_VERSION: Microversion = { major: 2, minor: 1 };
/** Highest microversion whose createImage/servers behaviour this API implements. */
export const MAX_VERSION: Microversion = { major: 2, minor: 96 };
/** From 2.45 createImage answers `{"image_id": ...}` instead of an empty body. */
export const IMAGE_ID_BODY_VERSION: Microversion = { major: 2, minor: 45 };

export function formatVersion(v: Microversion): string {
  return `${v.major}.${v.minor}`;
}

export function atLeast(v: Microversion, min: Microversion): boolean {
  return v.major > min.major || (v.major === min.major && v.minor >= min.minor);
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(',') : value;
}

/** The requested compute version string, or undefined when none was asked for. */
function requested(headers: IncomingHttpHeaders): string | undefined {
  const modern = single(headers['openstack-api-version']);
  if (modern !== undefined) {
    // The header may list several services: "compute 2.45, image 2.5".
    for (const part of modern.split(',')) {
      const m = /^\s*compute\s+(\S+)\s*$/i.exec(part);
      if (m?.[1] !== undefined) return m[1];
    }
  }
  return single(headers['x-openstack-nova-api-version'])?.trim();
}

export function negotiateVersion(headers: IncomingHttpHeaders): Microversion {
  const asked = requested(headers);
  if (asked === undefined) return MIN_VERSION;
  if (asked.toLowerCase() === 'latest') return MAX_VERSION;
  const m = /^([1-9]\d{0,2})\.(0|[1-9]\d{0,3})$/.exec(asked);
  if (m?.[1] === undefined || m[2] === undefined) {
    throw new ApiError(400, `API Version String ${asked.slice(0, 64)} is of invalid format. Must be of format MajorNum.MinorNum.`);
  }
  const v = { major: Number(m[1]), minor: Number(m[2]) };
  if (!atLeast(v, MIN_VERSION) || !atLeast(MAX_VERSION, v)) {
    throw new ApiError(406, `Version ${formatVersion(v)} is not supported by the API. Minimum is ${formatVersion(MIN_VERSION)} and maximum is ${formatVersion(MAX_VERSION)}.`);
  }
  return v;
}

/** Response headers Nova sets on every microversioned answer. */
export function versionHeaders(v: Microversion): Record<string, string> {
  return {
    'OpenStack-API-Version': `compute ${formatVersion(v)}`,
    'X-OpenStack-Nova-API-Version': formatVersion(v),
    Vary: 'OpenStack-API-Version, X-OpenStack-Nova-API-Version',
  };
}
