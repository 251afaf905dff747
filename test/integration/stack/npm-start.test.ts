// What `npm start` promises: the whole stack comes up on its ports, a createImage through the API
// ends in an active image byte-identical to the instance disk, and Ctrl-C leaves no process behind.
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { GlanceHttpClient } from '../../../src/images';
import { imagesIdentical } from '../../../src/host/qemu-img';
import { call } from '../../support/api-http';
import { downloadImage } from '../../support/image-bytes';
import { createInstanceFixture, type InstanceFixture } from '../../support/instance-fixture';
import { alive, startStackProcess, type StackProcess } from '../../support/stack-process';

const ROOT = join(__dirname, '..', '..', '..');
const Tokens = z.object({ tokens: z.array(z.object({ token: z.string(), projectId: z.string(), roles: z.array(z.string()) })) });

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

describe('npm start', () => {
  let dataDir: string;
  let stack: StackProcess;
  let fixture: InstanceFixture;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'snap-stack-'));
    fixture = await createInstanceFixture({});
    stack = await startStackProcess(dataDir, { SNAP_DEMO_INSTANCE: 'false' });
  });
  afterAll(async () => {
    await stack?.interrupt();
    await fixture?.cleanup();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('serves the UI and the API, snapshots through createImage, and stops everything on Ctrl-C', async () => {
    await stack.waitForOutput(/the stack is up/);
    const ui = await fetch(`http://127.0.0.1:${stack.ports.ui}/`);
    expect(ui.status).toBe(200);
    const pids = stack.childPids();
    expect(pids.length).toBeGreaterThanOrEqual(5); // Temporal, image service, two workers, API

    const tokens = Tokens.parse(JSON.parse(await readFile(join(dataDir, 'tokens.json'), 'utf8'))).tokens;
    const demo = tokens.find((t) => t.projectId === 'demo');
    const admin = tokens.find((t) => t.roles.includes('admin'));
    if (!demo || !admin) throw new Error('tokens missing');
    const api = `http://127.0.0.1:${stack.ports.api}`;
    const uuid = fixture.instance.domain.uuid;
    // The host worker's inventory report makes the guest an instance of the default project.
    await until('the instance in the inventory', async () => ((await call(api, { path: `/v2.1/servers/${uuid}`, token: demo.token })).status === 200 ? true : undefined));

    const accepted = await call(api, {
      method: 'POST',
      path: `/v2.1/servers/${uuid}/action`,
      token: demo.token,
      headers: { 'OpenStack-API-Version': 'compute 2.45' },
      body: { createImage: { name: 's1', metadata: { purpose: 'stack-test' } } },
    });
    expect(accepted.status).toBe(202);
    const imageId = z.object({ image_id: z.string().uuid() }).parse(accepted.json).image_id;
    const images = new GlanceHttpClient(`http://127.0.0.1:${stack.ports.image}`, demo.token);
    await until('an active image', async () => ((await images.get(imageId)).status === 'active' ? true : undefined));
    const file = await downloadImage(images, imageId, fixture.dir);
    expect(await imagesIdentical(file, fixture.instance.overlayPath, { forceShare: true })).toBe(true);
    const server = z.object({ server: z.object({ 'OS-EXT-STS:task_state': z.null() }) });
    await until('task_state None', async () => (server.safeParse((await call(api, { path: `/v2.1/servers/${uuid}`, token: demo.token })).json).success ? true : undefined));

    // The same through snapctl, the package's built binary, by server name, waiting for the end.
    const snapctl = spawnSync(process.execPath, [join(ROOT, 'dist', 'cli', 'snapctl.js'), 'snapshot', fixture.instance.name, '--name', 's2', '--wait'], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '', SNAP_TOKEN: demo.token, SNAP_API_URL: api, SNAP_IMAGE_URL: `http://127.0.0.1:${stack.ports.image}` },
      timeout: 120_000,
    });
    expect(snapctl.status).toBe(0);
    const second = /is active: image ([0-9a-f-]{36})/.exec(snapctl.stdout)?.[1];
    if (!second) throw new Error(`snapctl said: ${snapctl.stdout}${snapctl.stderr}`);
    const secondFile = await downloadImage(images, second, fixture.dir);
    expect(await imagesIdentical(secondFile, fixture.instance.overlayPath, { forceShare: true })).toBe(true);

    // The workers' Prometheus endpoints saw the run: a live snapshot's duration and its bytes.
    // (snapshot.end follows the final task_state write, so poll for it)
    const liveRuns = /snapshot_duration_seconds_count\{[^}]*mode="live"[^}]*\} 2/;
    await until('the live snapshot in the control worker metrics', async () =>
      liveRuns.test(await (await fetch(`http://127.0.0.1:${stack.ports.controlMetrics}/metrics`)).text()) ? true : undefined,
    );
    const host = await (await fetch(`http://127.0.0.1:${stack.ports.hostMetrics}/metrics`)).text();
    const uploaded = Number(/snapshot_bytes_uploaded_total\{[^}]*\} (\d+)/.exec(host)?.[1]);
    expect(uploaded).toBe(((await images.get(imageId)).size ?? 0) + ((await images.get(second)).size ?? 0));

    expect(await stack.interrupt()).toBe(0);
    expect(pids.filter(alive)).toEqual([]);
  });
});
