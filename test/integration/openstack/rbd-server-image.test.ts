// python-openstackclient's `openstack server image create --wait` for a server whose root disk is in
// Ceph RBD (Nova's images_type=rbd): the stack behind a real Keystone, a real single-node Ceph (one
// start), a real host worker on libvirt and a real idle guest on vms/<uuid>_disk. The image goes
// active, raw, holding the disk's bytes (compared with the disk read from the cluster just before,
// the ext4 superblock masked, which the snapshot's freeze rewrites). With Ceph's change tracking on (the
// default) and the stack's composing image service, the live run reads its own RBD snapshot through
// qemu-nbd, and that one snapshot of ours stays on the disk for the next incremental, nothing else.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { snapshotWorkflowId } from '../../../src/contract';
import { GlanceHttpClient } from '../../../src/images/client';
import { startApiStack, type ApiStack } from '../../support/api-stack';
import { fixtureInventoryDomain } from '../../support/fixture-inventory';
import { frozenCopy, imageMatchesFrozen, settle } from '../../support/guest/chain-checks';
import { createRealGuest } from '../../support/guest/real-guest-run';
import type { InstanceFixture } from '../../support/instance-fixture';
import { startKeystone, type KeystoneUser, type RunningKeystone } from '../../support/openstack/keystone';
import { openstackOk, writeCloudsYaml } from '../../support/openstack/openstack-cli';
import { rbdLeftovers, useRbdGuests } from '../../support/rbd-guest';
import { startStackHostWorker, type StackHostWorker } from '../../support/stack-host-worker';

jest.setTimeout(300_000);

const rbd = useRbdGuests();

describe('openstack server image create --wait for an RBD-backed server', () => {
  let keystone: RunningKeystone;
  let stack: ApiStack;
  let demo: KeystoneUser;
  let hostWorker: StackHostWorker | undefined;
  let fixture: InstanceFixture;
  let dir: string;
  let clouds: string;

  beforeAll(async () => {
    keystone = await startKeystone();
    const service = await keystone.createUser('snapshots', 'service', ['admin', 'service']);
    demo = await keystone.createUser('demo', 'demo', ['member']);
    const source = keystone.authenticatorFor(service);
    const serviceToken = await source.serviceToken();
    stack = await startApiStack({ identity: { source, serviceToken } });
    await keystone.registerEndpoint('compute', 'nova', `${stack.api.url}/v2.1`);
    await keystone.registerEndpoint('image', 'glance', stack.images.url);
    dir = await mkdtemp(join(tmpdir(), 'osc-rbd-'));
    clouds = await writeCloudsYaml(dir, { demo: { authUrl: keystone.url, username: demo.username, password: demo.password, project: demo.project } });
    // the guest first: the worker's first inventory report then finds its owner in the domain, as Nova writes it
    fixture = await createRealGuest({ prefix: 'snaposcrbd', memoryMiB: 256, projectId: demo.projectId, linux: { workload: 'idle' }, ...rbd().guestOptions() });
    // a real host worker of its own host name beside the stack's stub one, reading the cluster as Nova's settings say
    hostWorker = await startStackHostWorker(stack, { prefix: 'osc-rbd', dir, serviceToken, hostEnv: rbd().hostEnv });
    await stack.store.upsertFromInventory([{ ...fixtureInventoryDomain(fixture, hostWorker.config.host), projectId: demo.projectId, userId: demo.userId }]);
  });
  afterAll(async () => {
    await fixture?.cleanup();
    await hostWorker?.stop();
    await stack?.stop();
    await keystone?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('the image goes active, raw, and holds the disk’s bytes; only the chain’s RBD snapshot stays', async () => {
    const uuid = fixture.instance.domain.uuid;
    await settle(fixture);
    const disk = await frozenCopy(fixture, 'osc-rbd');
    const created = (await openstackOk(clouds, 'demo', ['server', 'image', 'create', '--name', 'osc-rbd-snap', '--wait', uuid, '-f', 'json'], { cwd: dir, timeoutMs: 240_000 })) as Record<string, unknown>;
    expect(created).toMatchObject({ name: 'osc-rbd-snap', status: 'active' });
    const result = await stack.temporal.workflow.getHandle(snapshotWorkflowId(uuid)).result();
    expect(result).toMatchObject({ mode: 'live', dataPath: 'qemu-nbd', status: 'active' });

    const image = (await openstackOk(clouds, 'demo', ['image', 'show', String(created.id), '-f', 'json'], { cwd: dir })) as Record<string, unknown>;
    expect(image).toMatchObject({ status: 'active', disk_format: 'raw', owner: demo.projectId });
    const asDemo = new GlanceHttpClient(stack.images.url, await keystone.passwordToken(demo.username, demo.password, demo.project));
    expect(await imageMatchesFrozen(asDemo, String(created.id), disk, fixture.dir)).toMatchObject({ identical: true });
    expect(await rbdLeftovers(rbd().cluster, fixture, stack.store.chain)).toEqual([]);
  });
});
