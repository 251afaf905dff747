// planChain and recordChain, the control side of incremental snapshots: a backend that cannot
// compose (a real Glance) makes every snapshot full and says so; otherwise the newest recorded
// checkpoint whose image is active is the parent, and each way of having none has its reason.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import pino from 'pino';
import { createControlActivities } from '../../../src/activities/control-activities';
import type { ChainPlan, ChainRecordInput, ControlActivities } from '../../../src/contract';
import { ImageNotFound, type Image, type ImageClient } from '../../../src/images/client';
import { InstanceStore } from '../../../src/store';

describe('planChain', () => {
  let dir: string;
  let store: InstanceStore;
  const statuses = new Map<string, string>();
  let composes = true;

  const images = {
    composes: async () => composes,
    get: async (id: string) => {
      const status = statuses.get(id);
      if (status === undefined) throw new ImageNotFound(id);
      return { id, status } as Image;
    },
  } as unknown as ImageClient;

  const activities = (): ControlActivities => createControlActivities({ store, images, createImageRecord: () => Promise.reject(new Error('unused')), log: pino({ level: 'silent' }) });
  const plan = (instanceUuid: string): Promise<ChainPlan> => new MockActivityEnvironment().run(activities().planChain, { instanceUuid });
  const record = (input: ChainRecordInput): Promise<void> => new MockActivityEnvironment().run(activities().recordChain, input);
  const row = (instanceUuid: string, imageId: string, checkpoint?: string): ChainRecordInput => ({
    instanceUuid,
    imageId,
    host: 'h1',
    kind: 'full',
    fullReason: 'the first snapshot of this instance',
    virtualSize: 1 << 30,
    checkpointXml: '<domaincheckpoint/>',
    diskIdentity: 'dev1-ino2',
    ...(checkpoint !== undefined ? { checkpoint } : {}),
  });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'plan-chain-'));
    store = await InstanceStore.open({ kind: 'sqlite', path: join(dir, 'instances.db') });
  });
  afterAll(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    composes = true;
    statuses.clear();
  });

  it('a backend that cannot compose: full, whatever the store holds', async () => {
    const uuid = randomUUID();
    statuses.set('a', 'active');
    await record(row(uuid, 'a', 'snap-a'));
    composes = false;
    expect(await plan(uuid)).toEqual({ composes: false, parent: null, reason: 'the image backend cannot compose images (a real Glance): every snapshot is full' });
  });

  it('the first snapshot of an instance, then its checkpoint as the parent', async () => {
    const uuid = randomUUID();
    expect(await plan(uuid)).toEqual({ composes: true, parent: null, reason: 'the first snapshot of this instance' });
    statuses.set('img-1', 'active');
    await record(row(uuid, 'img-1', 'snap-1'));
    expect(await plan(uuid)).toEqual({
      composes: true,
      parent: { imageId: 'img-1', checkpoint: 'snap-1', checkpointXml: '<domaincheckpoint/>', diskIdentity: 'dev1-ino2', virtualSize: 1 << 30 },
      reason: null,
    });
  });

  it('a newer checkpoint retires the older one; a snapshot without one (cold) does not', async () => {
    const uuid = randomUUID();
    statuses.set('r-1', 'active').set('r-2', 'active').set('r-3', 'active');
    await record(row(uuid, 'r-1', 'snap-1'));
    await record(row(uuid, 'r-2', 'snap-2'));
    await record(row(uuid, 'r-3'));
    expect((await plan(uuid)).parent?.checkpoint).toBe('snap-2');
    const retired = new Map((await store.chain.list(uuid)).map((r) => [r.imageId, r.retired]));
    expect(Object.fromEntries(retired)).toEqual({ 'r-1': true, 'r-2': false, 'r-3': true });
  });

  it('the parent image deleted: full, with the reason', async () => {
    const uuid = randomUUID();
    await record(row(uuid, 'gone', 'snap-g'));
    expect(await plan(uuid)).toEqual({ composes: true, parent: null, reason: 'parent image gone is deleted' });
  });
});
