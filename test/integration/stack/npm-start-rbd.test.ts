// `npm start` with SNAP_DEMO_STORAGE=rbd: the stack brings up a single-node Ceph, the demo guest's
// root disk is Nova's vms/<uuid>_disk in it, a createImage through the API ends in an active raw
// image that is a clean ext4, and Ctrl-C stops every process (the Ceph daemons too) and removes
// the demo domain, whose disk went with the cluster.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { GlanceHttpClient } from '../../../src/images/client';
import { Libvirt, LibvirtError, VIR_ERR_NO_DOMAIN } from '../../../src/libvirt';
import { planInstance } from '../../../src/testing/instance-layout';
import { removeInstance } from '../../../src/testing/instance-lifecycle';
import { call } from '../../support/api-http';
import { uniqueDomainName } from '../../support/instance-fixture';
import { verifyGuestImage, waitForFsynced } from '../../support/guest/real-guest-run';
import { alive, startStackProcess, type StackProcess } from '../../support/stack-process';
import { until } from '../../support/until';

const Tokens = z.object({ tokens: z.array(z.object({ token: z.string(), projectId: z.string() })) });

describe('npm start with SNAP_DEMO_STORAGE=rbd', () => {
  const demoName = uniqueDomainName('snaptest-rbddemo');
  let dataDir: string;
  let stack: StackProcess;
  const stackOutput = (): string => `the stack's output (its end):\n${stack.output().slice(-12_000)}`;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'snap-stack-rbd-'));
    stack = await startStackProcess(dataDir, { SNAP_DEMO_INSTANCE: 'always', SNAP_DEMO_NAME: demoName, SNAP_DEMO_STORAGE: 'rbd' });
  });
  afterAll(async () => {
    await stack?.interrupt();
    const client = await Libvirt.connect('qemu:///system');
    await removeInstance(client, planInstance({ name: demoName, dir: join(dataDir, 'demo') })).finally(() => client.close());
    await rm(dataDir, { recursive: true, force: true });
  });

  it('runs the demo guest on a Ceph of its own, snapshots it, and stops the cluster with the stack', async () => {
    // npm start waits up to 180 s for the demo instance in the inventory: past that its own words show here.
    await stack.waitForOutput(/the stack is up/, 240_000);
    const out = stack.output();
    const uuid = new RegExp(`demo instance\\s+${demoName} \\(([0-9a-f-]{36})\\).* in RBD \\(vms/\\1_disk\\)`).exec(out)?.[1];
    const consolePath = /guest console\s+(\S+)/.exec(out)?.[1];
    const cephConf = /Ceph \(demo\)\s+(\S+)/.exec(out)?.[1];
    if (!uuid || !consolePath || !cephConf) throw new Error(`no RBD demo instance in the output:\n${out}`);
    const pids = stack.childPids();
    await waitForFsynced(consolePath, 'blocks', 1, 120_000);

    const demo = Tokens.parse(JSON.parse(await readFile(join(dataDir, 'tokens.json'), 'utf8'))).tokens.find((t) => t.projectId === 'demo');
    if (!demo) throw new Error('demo token missing');
    const api = `http://127.0.0.1:${stack.ports.api}`;
    const images = new GlanceHttpClient(`http://127.0.0.1:${stack.ports.image}`, demo.token);
    await until('the instance in the inventory', async () => ((await call(api, { path: `/v2.1/servers/${uuid}`, token: demo.token })).status === 200 ? true : undefined), undefined, stackOutput);
    const accepted = await call(api, { method: 'POST', path: `/v2.1/servers/${uuid}/action`, token: demo.token, headers: { 'OpenStack-API-Version': 'compute 2.45' }, body: { createImage: { name: 'rbd-demo' } } });
    expect(accepted.status).toBe(202);
    const imageId = z.object({ image_id: z.string().uuid() }).parse(accepted.json).image_id;
    await until('an active image', async () => ((await images.get(imageId)).status === 'active' ? true : undefined), 180_000, stackOutput);
    const image = await images.get(imageId);
    expect(image.disk_format).toBe('raw');
    // live from the run's own RBD snapshot (Ceph's change tracking, on by default; the demo's image service composes)
    expect(image.properties.snapshot_data_path).toBe('qemu-nbd');
    expect((await verifyGuestImage(images, imageId, { workload: 'blocks', scratchDir: dataDir }, 0)).fsckClean).toBe(true);

    expect(await stack.interrupt()).toBe(0);
    expect([...pids, ...stack.childPids()].filter(alive)).toEqual([]);
    // the demo domain went with the cluster its disk was in, and so did the cluster's directory
    const client = await Libvirt.connect('qemu:///system');
    try {
      await expect(client.domainLookupByName(demoName)).rejects.toMatchObject({ code: VIR_ERR_NO_DOMAIN } satisfies Partial<LibvirtError>);
    } finally {
      await client.close();
    }
    await expect(readFile(cephConf)).rejects.toMatchObject({ code: 'ENOENT' });
  }, 480_000);
});
