// The server views and version documents checked by Tempest's own response schemas
// (tempest.lib.api_schema, from PyPI) at every microversion the API advertises, for a member and
// an admin, for instances with and without Nova's owner and flavor metadata.
import { call } from '../../support/api-http';
import { TOKENS, startApiStack, type ApiStack } from '../../support/api-stack';
import { tempestRefusals, type SchemaCase } from '../../support/tempest-schemas';

let stack: ApiStack;
beforeAll(async () => {
  stack = await startApiStack({ workers: false });
});
afterAll(async () => {
  await stack?.stop();
});

const VERSIONS = Array.from({ length: 96 }, (_, i) => `2.${i + 1}`);
// a server that boots from a Cinder volume and has a second one attached
const BOOT_FROM_VOLUME = [
  { volumeId: '0b6a57d4-3c1e-4a8f-9d2b-7e5f4c3b2a19', device: 'vda', root: true },
  { volumeId: '5e2f1a3b-8c7d-4e6f-a5b4-c3d2e1f0a9b8', device: 'vdb', root: false },
];

it('every server view validates against Tempest at 2.1 … 2.96, and the version documents too', async () => {
  const withNova = await stack.addInstance({ userId: 'user-1', flavor: { name: 'm1.small', vcpus: 1, memoryMiB: 2048, diskGiB: 20, swapMiB: 0, ephemeralGiB: 0 } });
  await stack.addInstance({ imageRef: '8d5c1b0e-2f3a-4c1d-9e8f-7a6b5c4d3e2f' });
  await stack.addInstance({ volumes: BOOT_FROM_VOLUME });
  const url = stack.api.url;
  const cases: SchemaCase[] = [];
  for (const version of VERSIONS) {
    const headers = { 'OpenStack-API-Version': `compute ${version}` };
    for (const token of [TOKENS.demo, TOKENS.admin]) {
      const query = token === TOKENS.admin ? '?all_tenants=1' : '';
      const list = await call(url, { path: `/v2.1/servers${query}`, token, headers });
      const detail = await call(url, { path: `/v2.1/servers/detail${query}`, token, headers });
      const one = await call(url, { path: `/v2.1/servers/${withNova.uuid}`, token, headers });
      expect((detail.json as { servers: unknown[] }).servers.length).toBeGreaterThanOrEqual(3);
      cases.push(
        { version, schema: 'servers.list_servers', status: list.status, body: list.json },
        { version, schema: 'servers.list_servers_detail', status: detail.status, body: detail.json },
        { version, schema: 'servers.get_server', status: one.status, body: one.json },
      );
    }
  }
  const root = await call(url, { path: '/' });
  const v21 = await call(url, { path: '/v2.1' });
  cases.push({ version: '2.1', schema: 'versions.list_versions', status: root.status, body: root.json });
  cases.push({ version: '2.1', schema: 'versions.get_one_version', status: v21.status, body: v21.json });

  const refused = await tempestRefusals(cases);
  expect(refused.map((r) => `${r.case.schema} at ${r.case.version}: ${r.error.split('\n').slice(0, 3).join(' ')}`)).toEqual([]);
  expect(cases).toHaveLength(96 * 6 + 2);
});

it('shows a boot-from-volume server as Nova does: image "" and its volumes attached', async () => {
  const inst = await stack.addInstance({ imageRef: '8d5c1b0e-2f3a-4c1d-9e8f-7a6b5c4d3e2f', volumes: BOOT_FROM_VOLUME });
  const server = ((await call(stack.api.url, { path: `/v2.1/servers/${inst.uuid}`, token: TOKENS.demo, headers: { 'OpenStack-API-Version': 'compute 2.96' } })).json as { server: Record<string, unknown> }).server;
  expect(server.image).toBe('');
  expect(server['os-extended-volumes:volumes_attached']).toEqual(BOOT_FROM_VOLUME.map((v) => ({ id: v.volumeId })));
});

it('embeds the flavor from 2.47 and derives hostId as Nova does', async () => {
  const inst = await stack.addInstance({ userId: 'user-2', flavor: { name: 'm1.tiny', vcpus: 1, memoryMiB: 512, diskGiB: 1, swapMiB: 0, ephemeralGiB: 0 } });
  const show = async (version: string) =>
    ((await call(stack.api.url, { path: `/v2.1/servers/${inst.uuid}`, token: TOKENS.demo, headers: { 'OpenStack-API-Version': `compute ${version}` } })).json as { server: Record<string, unknown> }).server;
  expect(await show('2.18')).not.toHaveProperty('description');
  const old = await show('2.46');
  expect(old.description).toBeNull();
  expect(old.flavor).toEqual({ id: 'm1.tiny', links: [{ rel: 'bookmark', href: `${stack.api.url}/flavors/m1.tiny` }] });
  const current = await show('2.96');
  expect(current.flavor).toEqual({ original_name: 'm1.tiny', vcpus: 1, ram: 512, disk: 1, ephemeral: 0, swap: 0 });
  expect(current).toMatchObject({ user_id: 'user-2', addresses: {}, description: null, tags: [], locked: false, server_groups: [], pinned_availability_zone: null });
  // nova.utils.generate_hostid: sha224 of project id + host
  const { createHash } = await import('node:crypto');
  expect(current.hostId).toBe(createHash('sha224').update(`demo${inst.host}`).digest('hex'));
});
