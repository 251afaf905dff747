// Finding Cinder in Keystone's catalog as keystoneauth does (service type, interface, region), the
// catalog checked with zod, and the volume root the workers derive from the catalog's URL.
import { catalogEndpoint, CatalogEndpointMissing, CatalogSchema } from '../../../src/auth';
import { volumeRootOf } from '../../../src/cinder';

const body = {
  catalog: [
    { type: 'image', name: 'glance', endpoints: [{ interface: 'public', region_id: 'RegionOne', url: 'http://glance:9292' }] },
    {
      type: 'volumev3',
      name: 'cinderv3',
      endpoints: [
        { interface: 'internal', region_id: 'RegionOne', url: 'http://cinder-int:8776/v3/p-1' },
        { interface: 'public', region_id: 'RegionTwo', url: 'http://cinder-two:8776/v3/p-1' },
        { interface: 'public', region_id: 'RegionOne', url: 'http://cinder-one:8776/v3/p-1/' },
      ],
    },
  ],
  links: { self: 'http://keystone/v3/auth/catalog' },
};
const catalog = CatalogSchema.parse(body).catalog;

it('finds the endpoint of the service type and interface, in the region when one is named', () => {
  expect(catalogEndpoint(catalog, { type: 'volumev3', interface: 'public' })).toBe('http://cinder-two:8776/v3/p-1');
  expect(catalogEndpoint(catalog, { type: 'volumev3', interface: 'public', region: 'RegionOne' })).toBe('http://cinder-one:8776/v3/p-1');
  expect(catalogEndpoint(catalog, { type: 'volumev3', interface: 'internal' })).toBe('http://cinder-int:8776/v3/p-1');
});

it('names what it looked for when the catalog has no such endpoint', () => {
  expect(() => catalogEndpoint(catalog, { type: 'volumev3', interface: 'admin' })).toThrow(CatalogEndpointMissing);
  expect(() => catalogEndpoint(catalog, { type: 'volumev3', interface: 'public', region: 'RegionX' })).toThrow(/no public endpoint of service type volumev3 in region RegionX/);
  expect(() => catalogEndpoint(catalog, { type: 'block-storage', interface: 'public' })).toThrow(CatalogEndpointMissing);
});

it('refuses a catalog whose endpoint URL is not http(s)', () => {
  const bad = { catalog: [{ type: 'volumev3', endpoints: [{ interface: 'public', url: 'file:///etc/passwd' }] }] };
  expect(CatalogSchema.safeParse(bad).success).toBe(false);
  expect(CatalogSchema.safeParse({ catalog: 'none' }).success).toBe(false);
});

it("takes the token's project (or an unsubstituted template) off the catalog URL: each client appends its own", () => {
  expect(volumeRootOf('http://cinder:8776/v3/p-1', 'p-1')).toBe('http://cinder:8776/v3');
  expect(volumeRootOf('http://cinder:8776/v3/%(project_id)s', null)).toBe('http://cinder:8776/v3');
  expect(volumeRootOf('http://cinder:8776/v3', 'p-1')).toBe('http://cinder:8776/v3');
  expect(volumeRootOf('http://cinder:8776/v3/p-2', 'p-1')).toBe('http://cinder:8776/v3/p-2');
});
