// python-openstackclient on a volume-backed server, the whole way through Keystone: a real Keystone,
// a real Cinder validating its tokens (auth_strategy=keystone, in the catalog as volumev3) on a real
// single-node Ceph, the compute API and the embedded image service behind Keystone, and a real host
// worker with a real guest booting from a Cinder volume on RBD. `openstack server image create
// --wait` gives an active image whose block_device_mapping names the Cinder snapshots; the API made a
// Keystone trust from the user to the workers' service user, the workers found Cinder in the catalog
// and made the snapshots through the trust, so `openstack volume snapshot list` as that user shows
// them (they are the tenant's, as Nova's are), and the trust is gone when the run ends. The server
// shows as Nova shows a boot-from-volume server. Over the Cinder snapshot quota, the same command
// is refused with Nova's 403 and nothing is made. One Ceph, one Cinder, one Keystone for the file.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { keystoneTrustDelegator } from '../../../src/api/volume-trust';
import type { KeystoneAuthenticator } from '../../../src/auth';
import { catalogVolumeRoot, CinderClient, workerVolumeAccess, type WorkerVolumeAccess } from '../../../src/cinder';
import { snapshotWorkflowId } from '../../../src/contract';
import { defineCephSecret, type CephSecret } from '../../../src/testing/ceph/libvirt-secret';
import { startApiStack, type ApiStack } from '../../support/api-stack';
import { useCephCluster } from '../../support/ceph';
import { useCinder } from '../../support/cinder';
import { fixtureInventoryDomain } from '../../support/fixture-inventory';
import { DEFAULT_TEST_URI, type InstanceFixture } from '../../support/instance-fixture';
import { CinderAdmin } from '../../support/openstack/cinder-admin';
import { startKeystone, type KeystoneUser, type RunningKeystone } from '../../support/openstack/keystone';
import { openstack, openstackOk, writeCloudsYaml } from '../../support/openstack/openstack-cli';
import { startStackHostWorker, type StackHostWorker } from '../../support/stack-host-worker';
import { createVolumeGuest } from '../../support/cinder-guest';

jest.setTimeout(300_000);

let keystone: RunningKeystone | undefined;
const ceph = useCephCluster();
// Keystone before Cinder: Cinder's service user and catalog entry are Keystone's
beforeAll(async () => {
  keystone = await startKeystone();
}, 120_000);
const cinder = useCinder(ceph, { keystone: () => ks() });

function ks(): RunningKeystone {
  if (keystone === undefined) throw new Error('Keystone is not up (beforeAll failed)');
  return keystone;
}

const TrustsSchema = z.object({ trusts: z.array(z.object({ id: z.string() })) });
const BdmSchema = z.array(z.object({ snapshot_id: z.string(), boot_index: z.number().nullable(), volume_size: z.number() }));

describe('openstack server image create --wait for a volume-backed server under Keystone', () => {
  let stack: ApiStack;
  let demo: KeystoneUser;
  let service: KeystoneUser;
  let source: KeystoneAuthenticator;
  let workers: WorkerVolumeAccess;
  let hostWorker: StackHostWorker | undefined;
  let secret: CephSecret | undefined;
  let fixture: InstanceFixture | undefined;
  let volumeId: string;
  let dir: string;
  let clouds: string;

  const demoToken = (): Promise<string> => ks().passwordToken(demo.username, demo.password, demo.project);

  beforeAll(async () => {
    const k = ks();
    const c = cinder();
    service = await k.createUser('snapshots', 'service', ['admin', 'service']);
    demo = await k.createUser('demo', 'demo', ['member']);
    source = k.authenticatorFor(service);
    const serviceToken = await source.serviceToken();
    // the workers as their processes configure themselves: no SNAP_VOLUME_URL, Cinder from the catalog
    const found = workerVolumeAccess(undefined, undefined, { SNAP_KEYSTONE_URL: k.url, SNAP_KEYSTONE_USERNAME: service.username, SNAP_KEYSTONE_PASSWORD: service.password, SNAP_KEYSTONE_PROJECT: service.project });
    if (found === undefined) throw new Error('the workers found no volume service under Keystone');
    workers = found;
    stack = await startApiStack({
      identity: { source, serviceToken },
      volumes: { api: { url: catalogVolumeRoot(source, { interface: 'public' }), callerToken: true }, trusts: keystoneTrustDelegator(source, 900), workers },
    });
    await k.registerEndpoint('compute', 'nova', `${stack.api.url}/v2.1`);
    await k.registerEndpoint('image', 'glance', stack.images.url);
    dir = await mkdtemp(join(tmpdir(), 'osc-volume-'));
    clouds = await writeCloudsYaml(dir, { demo: { authUrl: k.url, username: demo.username, password: demo.password, project: demo.project } });

    secret = await defineCephSecret(DEFAULT_TEST_URI, c.cephUser, c.cephKey);
    // the volume is the tenant's, made and attached with the tenant's token, as Nova attaches it
    const admin = new CinderAdmin({ baseUrl: c.baseUrl, projectId: demo.projectId, token: demoToken, timeoutMs: 30_000 });
    const guest = await createVolumeGuest({ cinder: c, cluster: ceph(), secretUuid: secret.uuid, projectId: demo.projectId }, { workload: 'log', rateKiB: 256, fixture: { projectId: demo.projectId, memoryMiB: 256 } }, admin);
    fixture = guest.fixture;
    volumeId = guest.volumeIds[0] ?? '';

    hostWorker = await startStackHostWorker(stack, { prefix: 'osc-vol', dir, serviceToken, cinder: workers.cinder });
    await stack.store.upsertFromInventory([{ ...fixtureInventoryDomain(fixture, hostWorker.config.host, undefined, demo.projectId), userId: demo.userId }]);
  }, 240_000);

  afterAll(async () => {
    await fixture?.cleanup();
    await hostWorker?.stop();
    await stack?.stop();
    await secret?.remove();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  afterAll(async () => {
    await keystone?.stop();
  });

  async function trustsOfDemo(): Promise<string[]> {
    const res = await fetch(`${ks().url}/OS-TRUST/trusts?trustor_user_id=${demo.userId}`, { headers: { 'X-Auth-Token': await demoToken() } });
    return TrustsSchema.parse(await res.json()).trusts.map((t) => t.id);
  }

  it("the image names the tenant's Cinder snapshots, made through a trust that is gone afterwards", async () => {
    if (fixture === undefined) throw new Error('no guest');
    const uuid = fixture.instance.domain.uuid;
    const created = (await openstackOk(clouds, 'demo', ['server', 'image', 'create', '--name', 'osc-volume-snap', '--wait', uuid, '-f', 'json'], { cwd: dir, timeoutMs: 240_000 })) as Record<string, unknown>;
    expect(created).toMatchObject({ name: 'osc-volume-snap', status: 'active' });
    const result = await stack.temporal.workflow.getHandle(snapshotWorkflowId(uuid)).result();
    expect(result).toMatchObject({ status: 'active', size: 0, dataPath: 'cinder-snapshot', mode: 'live' });
    expect(Object.keys(result.steps)).toContain('release_trust');
    process.stderr.write(`[osc volume-backed] freeze window ${String(result.freezeWindowMs)} ms, steps ${JSON.stringify(result.steps)}\n`);
    // the run's input carries a trust id and no token
    const history = await stack.temporal.workflow.getHandle(snapshotWorkflowId(uuid)).fetchHistory();
    const input = Buffer.from(history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0]?.data ?? []).toString('utf8');
    expect(input).toMatch(/"trustId":"[0-9a-f]{32}"/);
    expect(input).not.toMatch(/token/i);

    const image = (await openstackOk(clouds, 'demo', ['image', 'show', String(created.id), '-f', 'json'], { cwd: dir })) as { status: string; owner: string; properties: Record<string, unknown> };
    expect(image).toMatchObject({ status: 'active', owner: demo.projectId });
    expect(image.properties).toMatchObject({ bdm_v2: 'True', root_device_name: '/dev/vda' });
    const mapping = BdmSchema.parse(JSON.parse(String(image.properties.block_device_mapping)));
    expect(mapping).toEqual([expect.objectContaining({ boot_index: 0, volume_size: 1 })]);

    // the tenant sees the snapshots: they are its project's
    const snapshots = (await openstackOk(clouds, 'demo', ['volume', 'snapshot', 'list', '--long', '-f', 'json'], { cwd: dir })) as Record<string, unknown>[];
    expect(snapshots.map((s) => s.ID)).toEqual(mapping.map((m) => m.snapshot_id));
    expect(snapshots[0]).toMatchObject({ Status: 'available' });
    const shown = (await openstackOk(clouds, 'demo', ['volume', 'snapshot', 'show', mapping[0]?.snapshot_id ?? '', '-f', 'json'], { cwd: dir })) as Record<string, unknown>;
    expect(shown).toMatchObject({ volume_id: volumeId, status: 'available' });
    // and not the service user's: its own project has none
    const asService = new CinderClient({ baseUrl: cinder().baseUrl, projectId: service.projectId, token: () => source.serviceToken(), timeoutMs: 30_000 });
    expect((await asService.listSnapshots({})).map((s) => s.id)).toEqual([]);
    expect(await trustsOfDemo()).toEqual([]);

    // Nova's boot-from-volume view
    const server = (await openstackOk(clouds, 'demo', ['server', 'show', uuid, '-f', 'json'], { cwd: dir })) as Record<string, unknown>;
    expect(String(server.image)).toMatch(/^$|booted from volume/i);
    expect(JSON.stringify(server.volumes_attached)).toContain(volumeId);
  });

  it("over the tenant's Cinder snapshot quota the request gets Nova's 403 and nothing is made", async () => {
    if (fixture === undefined) throw new Error('no guest');
    const uuid = fixture.instance.domain.uuid;
    const c = cinder();
    const cinderAdmin = new CinderAdmin({ baseUrl: c.baseUrl, projectId: service.projectId, token: () => ks().passwordToken('cinder', 'cinder-secret-password', 'service'), timeoutMs: 30_000 });
    await cinderAdmin.setSnapshotQuota(1, demo.projectId);
    const before = await stack.imagesOf(uuid);
    const refused = await openstack(clouds, 'demo', ['server', 'image', 'create', '--name', 'over-quota', uuid], { cwd: dir });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/403.*Quota exceeded for resources: snapshots/s);
    expect((await stack.imagesOf(uuid)).map((i) => i.id)).toEqual(before.map((i) => i.id));
    expect((await stack.store.get(uuid))?.taskState).toBeNull();
    expect(await trustsOfDemo()).toEqual([]);
  });
});
