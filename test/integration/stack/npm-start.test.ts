// What `npm start` promises: the whole stack comes up on its ports with a real demo guest that
// writes to its disk; a createImage through the API ends in an active image that is a clean ext4
// whose every block is whole; a host worker killed with -9 in the middle of a snapshot is started
// again by the stack and the snapshot completes; Ctrl-C leaves no process behind.
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { GlanceHttpClient } from '../../../src/images/client';
import { Libvirt } from '../../../src/libvirt';
import { planInstance } from '../../../src/testing/instance-layout';
import { removeInstance } from '../../../src/testing/instance-lifecycle';
import { call } from '../../support/api-http';
import { uniqueDomainName } from '../../support/instance-fixture';
import { verifyGuestImage, waitForFsynced } from '../../support/guest/real-guest-run';
import { alive, startStackProcess, type StackProcess } from '../../support/stack-process';
import { until } from '../../support/until';
import { waitForFile } from '../../support/wait-for-file';
import { readConsole } from '../../../src/testing/guest/guest-console';
import { lastFsynced } from '../../../src/testing/guest/workload-verifiers';

const ROOT = join(__dirname, '..', '..', '..');
const Tokens = z.object({ tokens: z.array(z.object({ token: z.string(), projectId: z.string(), roles: z.array(z.string()) })) });

describe('npm start', () => {
  const demoName = uniqueDomainName('snaptest-demo');
  let dataDir: string;
  let barrierDir: string;
  let stack: StackProcess;
  const stackOutput = (): string => `the stack's output (its end):\n${stack.output().slice(-12_000)}`;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'snap-stack-'));
    barrierDir = await mkdtemp(join(tmpdir(), 'snap-stack-barrier-'));
    stack = await startStackProcess(dataDir, { SNAP_DEMO_INSTANCE: 'always', SNAP_DEMO_NAME: demoName, SNAP_TEST_BARRIER_DIR: barrierDir });
  });
  afterAll(async () => {
    await stack?.interrupt();
    const client = await Libvirt.connect('qemu:///system');
    await removeInstance(client, planInstance({ name: demoName, dir: join(dataDir, 'demo') })).finally(() => client.close());
    await rm(dataDir, { recursive: true, force: true });
    await rm(barrierDir, { recursive: true, force: true });
  });

  it('boots a writing demo guest, snapshots it, survives a host worker kill -9 mid-snapshot, and stops everything on Ctrl-C', async () => {
    await stack.waitForOutput(/the stack is up/, 240_000);
    const ui = await fetch(`http://127.0.0.1:${stack.ports.ui}/`);
    expect(ui.status).toBe(200);
    const pids = stack.childPids();
    expect(pids.length).toBeGreaterThanOrEqual(5); // Temporal, image service, two workers, API
    const uuid = new RegExp(`demo instance\\s+${demoName} \\(([0-9a-f-]{36})\\)`).exec(stack.output())?.[1];
    const consolePath = /guest console\s+(\S+)/.exec(stack.output())?.[1];
    if (!uuid || !consolePath) throw new Error(`no demo instance in the output:\n${stack.output()}`);
    const guest = { workload: 'blocks' as const, scratchDir: dataDir };
    await waitForFsynced(consolePath, 'blocks', 1, 120_000);

    const tokens = Tokens.parse(JSON.parse(await readFile(join(dataDir, 'tokens.json'), 'utf8'))).tokens;
    const demo = tokens.find((t) => t.projectId === 'demo');
    if (!demo) throw new Error('demo token missing');
    const api = `http://127.0.0.1:${stack.ports.api}`;
    const images = new GlanceHttpClient(`http://127.0.0.1:${stack.ports.image}`, demo.token);
    // The host worker's inventory report makes the guest an instance of the default project.
    await until('the instance in the inventory', async () => ((await call(api, { path: `/v2.1/servers/${uuid}`, token: demo.token })).status === 200 ? true : undefined), undefined, stackOutput);
    const createImage = async (name: string): Promise<string> => {
      const accepted = await call(api, {
        method: 'POST',
        path: `/v2.1/servers/${uuid}/action`,
        token: demo.token,
        headers: { 'OpenStack-API-Version': 'compute 2.45' },
        body: { createImage: { name, metadata: { purpose: 'stack-test' } } },
      });
      expect(accepted.status).toBe(202);
      return z.object({ image_id: z.string().uuid() }).parse(accepted.json).image_id;
    };
    const taskStateNone = async () => {
      const server = z.object({ server: z.object({ 'OS-EXT-STS:task_state': z.null() }) });
      await until('task_state None', async () => (server.safeParse((await call(api, { path: `/v2.1/servers/${uuid}`, token: demo.token })).json).success ? true : undefined), undefined, stackOutput);
    };

    const fsyncedBefore1 = lastFsynced(await readConsole(consolePath), 'blocks');
    const first = await createImage('s1');
    await until('an active image', async () => ((await images.get(first)).status === 'active' ? true : undefined), undefined, stackOutput);
    const contents1 = await verifyGuestImage(images, first, guest, fsyncedBefore1);
    expect(contents1.fsckClean).toBe(true);
    expect(contents1.blocks?.written).toBeGreaterThan(0);
    await taskStateNone();

    // Supervision: the host worker dies with the upload in its hands; the stack starts it again and
    // the snapshot completes on the new one.
    const hostWorkerPid = Number([...stack.output().matchAll(/\[stack\] host-worker started \(pid (\d+)/g)].at(-1)?.[1]);
    expect(alive(hostWorkerPid)).toBe(true);
    await writeFile(join(barrierDir, 'upload.hold'), '');
    const fsyncedBefore2 = lastFsynced(await readConsole(consolePath), 'blocks');
    const second = await createImage('s2');
    await waitForFile(join(barrierDir, 'upload.reached'), 120_000);
    // While the snapshot runs, its image is the snapshot service's to write, not its owner's.
    expect(await images.commitStaged(second, { properties: { snapshot_data_path: 'backup-job' } }).catch((e: unknown) => e)).toMatchObject({ status: 403 });
    process.kill(hostWorkerPid, 'SIGKILL');
    await unlink(join(barrierDir, 'upload.hold'));
    await stack.waitForOutput(/\[stack\] host-worker exited unexpectedly \(SIGKILL\); restarting/, 30_000);
    await stack.waitForOutput(/\[stack\] host-worker started \(pid \d+, restart 1\)/, 60_000);
    await until('the interrupted snapshot active', async () => ((await images.get(second)).status === 'active' ? true : undefined), 180_000, stackOutput);
    const contents2 = await verifyGuestImage(images, second, guest, fsyncedBefore2);
    expect(contents2.fsckClean).toBe(true);
    await taskStateNone();

    // The same through snapctl, the package's built binary, by server name, waiting for the end.
    const fsyncedBefore3 = lastFsynced(await readConsole(consolePath), 'blocks');
    const snapctl = spawnSync(process.execPath, [join(ROOT, 'dist', 'cli', 'snapctl.js'), 'snapshot', demoName, '--name', 's3', '--wait'], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '', SNAP_TOKEN: demo.token, SNAP_API_URL: api, SNAP_IMAGE_URL: `http://127.0.0.1:${stack.ports.image}` },
      timeout: 120_000,
    });
    expect(snapctl.status).toBe(0);
    const third = /is active: image ([0-9a-f-]{36})/.exec(snapctl.stdout)?.[1];
    if (!third) throw new Error(`snapctl said: ${snapctl.stdout}${snapctl.stderr}`);
    expect((await verifyGuestImage(images, third, guest, fsyncedBefore3)).fsckClean).toBe(true);
    // The third builds on the second's checkpoint: only what the guest changed since went.
    expect(snapctl.stdout).toContain(`incremental over ${second}`);

    // The workers' Prometheus endpoints saw the runs: three live snapshots, and the bytes the
    // restarted host worker uploaded (the killed one's counter died with it).
    const liveRuns = /snapshot_duration_seconds_count\{[^}]*mode="live"[^}]*\} 3/;
    await until('the live snapshots in the control worker metrics', async () =>
      liveRuns.test(await (await fetch(`http://127.0.0.1:${stack.ports.controlMetrics}/metrics`)).text()) ? true : undefined,
    );
    const host = await (await fetch(`http://127.0.0.1:${stack.ports.hostMetrics}/metrics`)).text();
    const uploaded = Number(/snapshot_bytes_uploaded_total\{[^}]*\} (\d+)/.exec(host)?.[1]);
    // Guest data sent, as each image records it (the changed extents for an incremental).
    const sent = async (id: string): Promise<number> => Number((await images.get(id)).properties.snapshot_changed_bytes);
    expect(uploaded).toBe((await sent(second)) + (await sent(third)));

    const pidsAtEnd = stack.childPids();
    expect(await stack.interrupt()).toBe(0);
    expect([...pids, ...pidsAtEnd].filter(alive)).toEqual([]);
  }, 600_000);
});
