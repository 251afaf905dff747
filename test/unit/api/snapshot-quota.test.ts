// createImage when the image service refuses the image record for a project quota (Glance's 413):
// Nova's answer, 403 "Quota exceeded for resources: ['images']", and nothing else happens — no
// task_state change, no instance action, no workflow. The same for a volume-backed instance whose
// Cinder snapshot quota cannot take its volumes' snapshots (Nova's 403 OverQuota for snapshots).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GlanceHttpClient } from '../../../src/images/client';
import { startImageServer, type RunningImageServer } from '../../../src/images/service';
import { UNLIMITED_QUOTAS } from '../../../src/images/service/quotas';
import { instanceWith, refusingStarter } from '../../support/refusing-starter';

let dir: string;
let server: RunningImageServer;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'snapshot-quota-'));
  const authenticate = (token: string) => (token === 'p1' ? { kind: 'project' as const, projectId: 'p1', projectAdmin: false } : null);
  server = await startImageServer({ port: 0, dataDir: dir, maxImageBytes: 1024, authenticate, quotas: { ...UNLIMITED_QUOTAS, image_count_total: 0 } });
});
afterEach(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

it("answers Nova's 403 over-quota fault and starts nothing", async () => {
  const { starter, touched } = refusingStarter();
  const images = new GlanceHttpClient(server.url, 'p1');
  const refusal = await starter.start({ instance: instanceWith([]), name: 's1', metadata: {}, images, requestId: 'req-1', projectId: 'p1' }).catch((e: unknown) => e);
  expect(refusal).toMatchObject({ status: 403, message: "Quota exceeded for resources: ['images']" });
  expect(touched).toEqual([]);
  expect(await images.list()).toEqual([]);
});

it("answers Nova's 403 OverQuota for a volume-backed instance over its Cinder snapshot quota, before any image or run exists", async () => {
  const { starter, touched } = refusingStarter();
  const instance = instanceWith([
    { volumeId: '33333333-3333-4333-8333-333333333333', device: 'vda', root: true },
    { volumeId: '44444444-4444-4444-8444-444444444444', device: 'vdb', root: false },
  ]);
  const images = new GlanceHttpClient(server.url, 'p1');
  // two snapshots wanted, one left
  const snapshotQuota = async () => ({ limit: 10, inUse: 9 });
  const refusal = await starter.start({ instance, name: 's1', metadata: {}, images, requestId: 'req-2', projectId: 'p1', snapshotQuota }).catch((e: unknown) => e);
  expect(refusal).toMatchObject({ status: 403, message: 'Quota exceeded for resources: snapshots' });
  expect(touched).toEqual([]);
  expect(await images.list()).toEqual([]);
});
