import { hostTaskQueue, SnapshotInputSchema, snapshotWorkflowId } from '../../../src/contract';

describe('snapshot contract', () => {
  const uuid = '6a7393e6-45ec-4777-8160-b9139e60b64d';

  it('accepts what the API and ops send', () => {
    expect(SnapshotInputSchema.parse({ instanceUuid: uuid, name: 's1' })).toEqual({ instanceUuid: uuid, name: 's1' });
    expect(SnapshotInputSchema.parse({ instanceUuid: uuid, name: 's1', metadata: { a: 'b' }, imageId: uuid }).metadata).toEqual({ a: 'b' });
  });

  it('refuses bad input: names, uuids, unknown fields, oversized metadata', () => {
    for (const bad of [
      { instanceUuid: 'x', name: 's' },
      { instanceUuid: uuid, name: '' },
      { instanceUuid: uuid, name: 'n'.repeat(256) },
      { instanceUuid: uuid, name: 's', extra: 1 },
      { instanceUuid: uuid, name: 's', metadata: { k: 'v'.repeat(256) } },
      { instanceUuid: uuid, name: 's', metadata: Object.fromEntries(Array.from({ length: 129 }, (_, i) => [`k${i}`, 'v'])) },
    ]) {
      expect(SnapshotInputSchema.safeParse(bad).success).toBe(false);
    }
  });

  it("carries a Keystone trust's id, never anything that is not one", () => {
    const trustId = '0123456789abcdef0123456789abcdef';
    expect(SnapshotInputSchema.parse({ instanceUuid: uuid, name: 's1', trustId }).trustId).toBe(trustId);
    for (const bad of ['', '../x', 'gAAAAAB' + 'x'.repeat(200), 'a b']) expect(SnapshotInputSchema.safeParse({ instanceUuid: uuid, name: 's1', trustId: bad }).success).toBe(false);
  });

  it('names queues and workflow ids predictably and refuses hostile host names', () => {
    expect(hostTaskQueue('compute-1.example')).toBe('snapshot-host-compute-1.example');
    expect(snapshotWorkflowId(uuid)).toBe(`snapshot-${uuid}`);
    for (const bad of ['', '../x', 'a b', '-lead', 'x'.repeat(64)]) expect(() => hostTaskQueue(bad)).toThrow();
  });
});
