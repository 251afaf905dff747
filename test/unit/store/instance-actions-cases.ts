// Instance actions as every backing database must keep them (part of the instance-store contract).
import { randomUUID } from 'node:crypto';
import type { InstanceStore } from '../../../src/store';

export function describeInstanceActionCases(ctx: () => { store: InstanceStore; tick(): void }): void {
  describe('instance actions', () => {
    it('records an action once per request id, its event start and end, newest first, and takes a refused one back', async () => {
      const { store, tick } = ctx();
      const instanceUuid = randomUUID();
      const first = { requestId: `req-${randomUUID()}`, instanceUuid, action: 'createImage' as const, imageId: randomUUID(), userId: 'u-1', projectId: 'p-1' };
      await store.actions.record(first);
      await store.actions.record(first);
      tick();
      expect(await store.actions.startSnapshotEvent(first.imageId, 'compute-1')).toBe(true);
      expect(await store.actions.startSnapshotEvent(first.imageId, 'compute-2')).toBe(true);
      tick();
      expect(await store.actions.finishSnapshotEvent(first.imageId, { result: 'Error', traceback: 'snapshot failed at step upload: boom' })).toBe(true);
      tick();
      const second = { ...first, requestId: `req-${randomUUID()}`, imageId: randomUUID(), userId: undefined };
      await store.actions.record(second);
      // An event whose start was never recorded (the start notification was lost) still finishes.
      expect(await store.actions.finishSnapshotEvent(second.imageId, { result: 'Success' })).toBe(true);
      expect(await store.actions.startSnapshotEvent(randomUUID(), null)).toBe(false);

      const listed = await store.actions.list(instanceUuid);
      expect(listed.map((a) => [a.requestId, a.message, a.userId])).toEqual([[second.requestId, null, null], [first.requestId, 'Error', 'u-1']]);
      const shown = await store.actions.get(instanceUuid, first.requestId);
      expect(shown?.events).toEqual([
        { event: 'compute_snapshot_instance', host: 'compute-1', startTime: expect.any(String), finishTime: expect.any(String), result: 'Error', traceback: 'snapshot failed at step upload: boom' },
      ]);
      expect(shown?.action.finishTime).not.toBeNull();
      expect(await store.actions.get(randomUUID(), first.requestId)).toBeUndefined();

      await store.actions.remove(second.requestId);
      expect((await store.actions.list(instanceUuid)).map((a) => a.requestId)).toEqual([first.requestId]);
    });
  });
}
