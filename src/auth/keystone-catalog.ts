// Keystone's service catalog, as keystoneauth reads it to find an endpoint: the service of a type,
// its endpoint of an interface (and a region, when one is configured). The catalog comes from
// GET /v3/auth/catalog with a token, zod-checked; its URLs are the token's (Keystone substitutes
// `%(project_id)s` with the token's project).
import { z } from 'zod';
import { exchange, KeystoneProtocolError, type KeystoneEndpoint } from './keystone-client';

export const CATALOG_INTERFACES = ['public', 'internal', 'admin'] as const;
export type CatalogInterface = (typeof CATALOG_INTERFACES)[number];

const CatalogEndpointSchema = z.object({
  interface: z.string(),
  region_id: z.string().nullish(),
  region: z.string().nullish(),
  url: z.string().url().refine((u) => /^https?:\/\//.test(u), 'an http(s) URL'),
});

export const CatalogSchema = z.object({
  catalog: z.array(
    z.object({
      type: z.string(),
      name: z.string().optional(),
      endpoints: z.array(CatalogEndpointSchema).max(1000),
    }),
  ).max(1000),
});
export type Catalog = z.infer<typeof CatalogSchema>['catalog'];

export interface EndpointFilter {
  /** e.g. `volumev3` */
  type: string;
  interface: CatalogInterface;
  /** unset: any region (the first endpoint of the interface) */
  region?: string;
}

export class CatalogEndpointMissing extends Error {
  override readonly name = 'CatalogEndpointMissing';
}

/** The URL of the first endpoint that matches; throws CatalogEndpointMissing naming what was looked for. */
export function catalogEndpoint(catalog: Catalog, filter: EndpointFilter): string {
  for (const service of catalog) {
    if (service.type !== filter.type) continue;
    const found = service.endpoints.find((e) => e.interface === filter.interface && (filter.region === undefined || (e.region_id ?? e.region) === filter.region));
    if (found !== undefined) return found.url.replace(/\/+$/, '');
  }
  const region = filter.region === undefined ? '' : ` in region ${filter.region}`;
  throw new CatalogEndpointMissing(`Keystone's catalog has no ${filter.interface} endpoint of service type ${filter.type}${region}`);
}

/** The catalog as `token` sees it. */
export async function fetchCatalog(endpoint: KeystoneEndpoint, token: string): Promise<Catalog> {
  const answer = await exchange(endpoint, 'GET', 'auth/catalog', { 'X-Auth-Token': token });
  if (answer.status !== 200) throw new KeystoneProtocolError(`Keystone answered ${answer.status} to GET /v3/auth/catalog`, answer.status);
  const parsed = CatalogSchema.safeParse(answer.body);
  if (!parsed.success) throw new KeystoneProtocolError(`Keystone's catalog is not identity v3's: ${parsed.error.issues[0]?.message ?? ''}`, answer.status);
  return parsed.data.catalog;
}
