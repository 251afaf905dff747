// The reconciler over the real stack (Temporal dev server, SQLite store, image service with auth,
// the real workflow with api-stub activities): orphans a crash could leave are cleaned as Nova's
// start-up does; a running snapshot — held in its upload — is never touched, not even with a
// zero grace period; the grace period protects a request the API is still starting.
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { createLogger } from '../../../src/observability';
import { SnapshotReconciler, type ReconcileReport } from '../../../src/reconciler';
import { snapshotWorkflowId } from '../../../src/contract';
import { createImage, eventually } from '../../support/api-http';
import { TOKENS, startApiStack, type ApiStack } from '../../support/api-stack';

let stack: ApiStack;
beforeAll(async () => {
  stack = await startApiStack();
});
afterAll(async () => {
  await stack?.stop();
});

const log = createLogger({ name: 'reconciler-test', level: 'silent' });

function reconciler(graceMs: number): SnapshotReconciler {
  return new SnapshotReconciler({ client: stack.temporal, store: stack.store, images: stack.imageClient(), graceMs, log });
}

/** What a crashed API leaves: a queued snapshot image and task_state image_snapshot_pending, no workflow. */
async function crashedRequest(): Promise<{ uuid: string; imageId: string }> {
  const inst = await stack.addInstance();
  const image = await stack.imageClient().create({ name: 'orphan', properties: { image_type: 'snapshot', instance_uuid: inst.uuid } });
  await stack.store.setTaskStateOrThrow(inst.uuid, [null], 'image_snapshot_pending');
  return { uuid: inst.uuid, imageId: image.id };
}

async function imageStatus(id: string): Promise<string | null> {
  return (await stack.imageClient().list()).find((i) => i.id === id)?.status ?? null;
}

function touched(report: ReconcileReport, ids: string[]): boolean {
  return report.resetInstances.some((r) => ids.includes(r.uuid)) || report.deletedImages.some((d) => ids.includes(d.id));
}

describe('orphans with no workflow', () => {
  it('resets task_state and deletes queued and killed snapshot images; leaves active, non-snapshot and deleting alone', async () => {
    const orphan = await crashedRequest();
    // A killed image: an upload that broke half-way, its workflow gone.
    const killed = await stack.imageClient().create({ name: 'killed', properties: { image_type: 'snapshot', instance_uuid: orphan.uuid } });
    const broken = new Readable({ read() {} });
    broken.push(Buffer.alloc(4096, 1));
    setTimeout(() => broken.destroy(new Error('source died')), 50);
    await expect(stack.imageClient().upload(killed.id, broken)).rejects.toThrow();
    await eventually(async () => ((await imageStatus(killed.id)) === 'killed' ? true : undefined), 'image killed');

    const active = await stack.imageClient().create({ name: 'done', disk_format: 'raw', container_format: 'bare', properties: { image_type: 'snapshot', instance_uuid: orphan.uuid } });
    await stack.imageClient().upload(active.id, Readable.from([Buffer.alloc(1024, 2)]));
    const plain = await stack.imageClient().create({ name: 'not-a-snapshot', properties: { instance_uuid: orphan.uuid } });
    const deleting = await stack.addInstance();
    await stack.store.markDeleting(deleting.uuid);

    const report = await reconciler(0).runOnce();

    expect(report.resetInstances).toContainEqual({ uuid: orphan.uuid, taskState: 'image_snapshot_pending' });
    expect(report.deletedImages.map((d) => d.id).sort()).toEqual(expect.arrayContaining([orphan.imageId, killed.id].sort()));
    expect((await stack.store.getOrThrow(orphan.uuid)).taskState).toBeNull();
    expect(await imageStatus(orphan.imageId)).toBeNull();
    expect(await imageStatus(killed.id)).toBeNull();
    expect(await imageStatus(active.id)).toBe('active');
    expect(await imageStatus(plain.id)).toBe('queued');
    expect((await stack.store.getOrThrow(deleting.uuid)).taskState).toBe('deleting');
    // A second pass finds nothing more to do: the clean-up is idempotent.
    expect(touched(await reconciler(0).runOnce(), [orphan.uuid, orphan.imageId, killed.id])).toBe(false);
  });

  it('leaves an orphan younger than the grace period alone, and cleans it once the grace has passed', async () => {
    const orphan = await crashedRequest();
    const young = await reconciler(60_000).runOnce();
    expect(young.skipped).toEqual(expect.arrayContaining([
      { kind: 'instance', id: orphan.uuid, reason: 'grace' },
      { kind: 'image', id: orphan.imageId, reason: 'grace' },
    ]));
    expect((await stack.store.getOrThrow(orphan.uuid)).taskState).toBe('image_snapshot_pending');
    expect(await imageStatus(orphan.imageId)).toBe('queued');
    // Same rows seen from two minutes later.
    const later = new SnapshotReconciler({ client: stack.temporal, store: stack.store, images: stack.imageClient(), graceMs: 60_000, log, now: () => Date.now() + 120_000 });
    const report = await later.runOnce();
    expect(touched(report, [orphan.uuid])).toBe(true);
    expect(await imageStatus(orphan.imageId)).toBeNull();
  });

  it('does not clobber a task_state set again after it read the row (CAS on state and updated_at)', async () => {
    const orphan = await crashedRequest();
    const seen = await stack.store.getOrThrow(orphan.uuid);
    // Another node resets it and a new request sets it again: same value, newer row.
    await stack.store.setTaskStateOrThrow(orphan.uuid, ['image_snapshot_pending'], null);
    await new Promise((r) => setTimeout(r, 5));
    await stack.store.setTaskStateOrThrow(orphan.uuid, [null], 'image_snapshot_pending');
    const changed = await stack.store.compareAndSetTaskStateUnchangedSince(orphan.uuid, { taskState: 'image_snapshot_pending', updatedAt: seen.updatedAt }, null);
    expect(changed).toBe(false);
    expect((await stack.store.getOrThrow(orphan.uuid)).taskState).toBe('image_snapshot_pending');
    await stack.store.setTaskStateOrThrow(orphan.uuid, ['image_snapshot_pending'], null);
  });
});

describe('running snapshots', () => {
  it('never touches a snapshot held open in its upload, even with no grace period; it then completes', async () => {
    const inst = await stack.addInstance();
    const hold = stack.cloud.holdUpload(inst.uuid);
    const answer = await createImage(stack.api.url, TOKENS.demo, inst.uuid, { name: 'held' }, { 'OpenStack-API-Version': 'compute 2.45' });
    expect(answer.status).toBe(202);
    const imageId = (answer.json as { image_id: string }).image_id;
    // Straight away, before visibility may have indexed the run: the describe gate must protect it.
    const early = await reconciler(0).runOnce();
    expect(touched(early, [inst.uuid, imageId])).toBe(false);
    await hold.reached;
    const before = await stack.store.getOrThrow(inst.uuid);
    expect(before.taskState).toBe('image_uploading');
    for (let i = 0; i < 3; i += 1) {
      const report = await reconciler(0).runOnce();
      expect(touched(report, [inst.uuid, imageId])).toBe(false);
      expect(report.skipped).toEqual(expect.arrayContaining([
        { kind: 'instance', id: inst.uuid, reason: 'open_workflow' },
        { kind: 'image', id: imageId, reason: 'open_workflow' },
      ]));
    }
    expect((await stack.store.getOrThrow(inst.uuid)).taskState).toBe('image_uploading');
    expect(await imageStatus(imageId)).toBe('queued');
    hold.release();
    await stack.temporal.workflow.getHandle(snapshotWorkflowId(inst.uuid)).result();
    expect(await imageStatus(imageId)).toBe('active');
    expect((await stack.store.getOrThrow(inst.uuid)).taskState).toBeNull();
  });

  it('cleans what a terminated run left (task_state image_uploading, queued image) once the run is closed', async () => {
    const inst = await stack.addInstance();
    const hold = stack.cloud.holdUpload(inst.uuid);
    const answer = await createImage(stack.api.url, TOKENS.demo, inst.uuid, { name: 'terminated' }, { 'OpenStack-API-Version': 'compute 2.45' });
    expect(answer.status).toBe(202);
    const imageId = (answer.json as { image_id: string }).image_id;
    await hold.reached;
    // Terminate skips compensations: exactly what an operator's terminate or a lost history leaves.
    await stack.temporal.workflow.getHandle(snapshotWorkflowId(inst.uuid)).terminate('test: abandon the run');
    // The held activity stays parked (as on a dead host) so that nothing uploads behind our back.
    // Visibility may still list the run as open for a moment; the reconciler then waits a pass.
    const report = await eventually(async () => {
      const r = await reconciler(0).runOnce();
      return touched(r, [inst.uuid]) ? r : undefined;
    }, 'the reconciler to see the run closed', 20_000);
    expect(report.resetInstances).toContainEqual({ uuid: inst.uuid, taskState: 'image_uploading' });
    expect(report.deletedImages.map((d) => d.id)).toContain(imageId);
    expect((await stack.store.getOrThrow(inst.uuid)).taskState).toBeNull();
    expect(await stack.imagesOf(inst.uuid)).toEqual([]);
    hold.release();
  });

  it('ignores an instance id nobody knows', async () => {
    expect(await stack.store.compareAndSetTaskStateUnchangedSince(randomUUID(), { taskState: 'image_snapshot', updatedAt: new Date().toISOString() }, null)).toBe(false);
  });
});
