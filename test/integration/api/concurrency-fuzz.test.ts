// Races and hostile input: 100 concurrent createImage on one instance (one 202, 99 × 409, one
// image), and thousands of fuzzed bodies, headers, paths and ops filters that must get a 4xx
// (never a 5xx) and change nothing: no image, no task_state, no workflow.
import { WorkflowNotFoundError } from '@temporalio/client';
import fc from 'fast-check';
import { snapshotWorkflowId } from '../../../src/contract';
import { call, createImage, type HttpAnswer } from '../../support/api-http';
import { POWER_STATE_CRASHED, TOKENS, startApiStack, type ApiStack } from '../../support/api-stack';

let stack: ApiStack;
let url: string;
beforeAll(async () => {
  stack = await startApiStack();
  url = stack.api.url;
});
afterAll(async () => {
  await stack?.stop();
});

async function expectNoWorkflow(uuid: string): Promise<void> {
  await expect(stack.temporal.workflow.getHandle(snapshotWorkflowId(uuid)).describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
}

describe('100 concurrent createImage on one instance', () => {
  it('exactly one 202, 99 × 409 with Nova\'s body, and one image record', async () => {
    const inst = await stack.addInstance();
    // The winner's workflow waits at upload, so it cannot reset task_state while the losers are still arriving.
    const hold = stack.cloud.holdUpload(inst.uuid);
    const answers: HttpAnswer[] = await Promise.all(
      Array.from({ length: 100 }, (_, i) => createImage(url, TOKENS.demo, inst.uuid, { name: `race-${i}` }, { 'OpenStack-API-Version': 'compute 2.45' })),
    );
    const accepted = answers.filter((a) => a.status === 202);
    const conflicts = answers.filter((a) => a.status === 409);
    expect(accepted).toHaveLength(1);
    expect(conflicts).toHaveLength(99);
    for (const c of conflicts) {
      expect((c.json as { conflictingRequest: { code: number; message: string } }).conflictingRequest).toEqual({
        code: 409,
        message: expect.stringMatching(new RegExp(`^Cannot 'createImage' instance ${inst.uuid} while it is in task_state image_`)),
      });
    }
    const winner = (accepted[0]?.json as { image_id: string }).image_id;
    expect((await stack.imagesOf(inst.uuid)).map((i) => i.id)).toEqual([winner]);

    await hold.reached;
    hold.release();
    await stack.temporal.workflow.getHandle(snapshotWorkflowId(inst.uuid)).result();
    const images = await stack.imagesOf(inst.uuid);
    expect(images.map((i) => [i.id, i.status])).toEqual([[winner, 'active']]);
    expect((await stack.store.getOrThrow(inst.uuid)).taskState).toBeNull();
  });
});

describe('fuzzed requests', () => {
  const printable = (max: number) => fc.stringMatching(new RegExp(`^[\\x20-\\x7e]{0,${max}}$`));
  const metadataValue = fc.oneof(fc.string({ maxLength: 300 }), fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 2 }));
  const createImageShape = fc.record(
    {
      name: fc.oneof(fc.string({ maxLength: 300 }), fc.constant(''), fc.constant(' x '), fc.integer(), fc.constant(null)),
      metadata: fc.oneof(fc.dictionary(fc.string({ maxLength: 260 }), metadataValue, { maxKeys: 140 }), fc.string(), fc.constant(null)),
      extra: fc.jsonValue(),
    },
    { requiredKeys: [] },
  );
  const validCreateImage = fc
    .record({ name: fc.stringMatching(/^[a-z][a-z0-9 ._-]{0,30}[a-z0-9]$/), metadata: fc.dictionary(fc.stringMatching(/^[a-z0-9_:.-]{1,20}$/), fc.string({ maxLength: 50 }), { maxKeys: 5 }) })
    .map((c) => JSON.stringify({ createImage: c }));
  const body = fc.oneof(
    { weight: 2, arbitrary: validCreateImage },
    { weight: 5, arbitrary: createImageShape.map((c) => JSON.stringify({ createImage: c })) },
    { weight: 2, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v)) },
    { weight: 2, arbitrary: fc.json() },
    { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString('latin1')) },
    { weight: 1, arbitrary: fc.integer({ min: 100_000, max: 200_000 }).map((n) => JSON.stringify({ createImage: { name: 'big', metadata: { k: 'v'.repeat(n) } } })) },
  );
  const headers = fc.record(
    {
      'Content-Type': fc.oneof(fc.constant('application/json'), fc.constant('application/json; charset=utf-8'), fc.constant('text/plain'), fc.constant('application/x-www-form-urlencoded'), printable(40)),
      'OpenStack-API-Version': fc.oneof(fc.constant('compute 2.45'), fc.constant('compute latest'), fc.constant('compute 9.9'), printable(30)),
      'X-OpenStack-Nova-API-Version': fc.oneof(fc.constant('2.1'), fc.constant('2.999'), printable(20)),
    },
    { requiredKeys: [] },
  );

  it('createImage answers 4xx only and changes nothing (3000 cases)', async () => {
    const broken = await stack.addInstance({ powerState: POWER_STATE_CRASHED }); // vm_state error: even valid bodies are 409
    const foreign = await stack.addInstance({ projectId: 'other' });
    const imagesBefore = (await stack.imageClient().list()).length;
    const seen = new Set<number>();

    await fc.assert(
      fc.asyncProperty(
        body,
        headers,
        fc.constantFrom(broken.uuid, foreign.uuid, '11111111-2222-4333-8444-555555555555', 'not-a-uuid'),
        fc.oneof({ weight: 8, arbitrary: fc.constant(TOKENS.demo) }, { weight: 1, arbitrary: printable(40) }),
        async (payload, hdrs, target, token) => {
          const answer = await call(url, { method: 'POST', path: `/v2.1/servers/${target}/action`, token, headers: hdrs, body: payload });
          seen.add(answer.status);
          if (answer.status < 400 || answer.status >= 500) throw new Error(`status ${answer.status} for ${payload.slice(0, 200)} ${JSON.stringify(hdrs)}: ${answer.text.slice(0, 300)}`);
          expect(Object.keys(answer.json as object)).toHaveLength(1);
        },
      ),
      { numRuns: 3000 },
    );
    // The generators reach every refusal class, not just one.
    expect([...seen].sort()).toEqual(expect.arrayContaining([400, 401, 404, 406, 409, 413, 415]));
    for (const inst of [broken, foreign]) {
      const now = await stack.store.getOrThrow(inst.uuid);
      expect({ task: now.taskState, vm: now.vmState }).toEqual({ task: null, vm: inst.vmState });
      expect(await stack.imagesOf(inst.uuid)).toEqual([]);
      await expectNoWorkflow(inst.uuid);
    }
    expect((await stack.imageClient().list()).length).toBe(imagesBefore);
  });

  it('server paths and ops filters answer 2xx/4xx only, never 5xx (600 cases)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 60 }), fc.dictionary(fc.constantFrom('state', 'instance', 'host', 'limit', 'x'), fc.string({ maxLength: 40 })), async (segment, query) => {
        const server = await call(url, { path: `/v2.1/servers/${encodeURIComponent(segment)}`, token: TOKENS.demo });
        expect([200, 404, 405]).toContain(server.status);
        const ops = await call(url, { path: `/ops/snapshots?${new URLSearchParams(query).toString()}`, token: TOKENS.admin });
        if (ops.status !== 200 && ops.status !== 400) throw new Error(`ops ${JSON.stringify(query)} → ${ops.status}: ${ops.text.slice(0, 300)}`);
      }),
      { numRuns: 600 },
    );
  });
});
