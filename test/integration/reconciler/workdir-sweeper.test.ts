// Host worker start-up sweep over real Temporal runs: a work dir whose run is open is kept, one
// whose run closed is removed (found through the owner marker, or through visibility by RunId
// when the marker is missing), and an unknown unmarked dir is removed only once it is old.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SnapshotWorkDirs } from '../../../src/host/snapshot-workdir';
import { createLogger } from '../../../src/observability';
import { sweepClosedWorkDirs } from '../../../src/reconciler';
import { snapshotWorkflowId } from '../../../src/contract';
import { createImage, eventually } from '../../support/api-http';
import { TOKENS, startApiStack, type ApiStack } from '../../support/api-stack';

let stack: ApiStack;
let root: string;
beforeAll(async () => {
  stack = await startApiStack();
  root = await mkdtemp(join(tmpdir(), 'sweep-'));
});
afterAll(async () => {
  await stack?.stop();
  if (root !== undefined) await rm(root, { recursive: true, force: true });
});

const log = createLogger({ name: 'sweep-test', level: 'silent' });

async function snapshotRun(hold: boolean): Promise<{ workflowId: string; runId: string; release: () => void }> {
  const inst = await stack.addInstance();
  const held = hold ? stack.cloud.holdUpload(inst.uuid) : undefined;
  const answer = await createImage(stack.api.url, TOKENS.demo, inst.uuid, { name: 'sweep' });
  expect(answer.status).toBe(202);
  const handle = stack.temporal.workflow.getHandle(snapshotWorkflowId(inst.uuid));
  if (held !== undefined) await held.reached;
  else await handle.result();
  const { runId, workflowId } = await handle.describe();
  return { workflowId, runId, release: held?.release ?? (() => undefined) };
}

it('keeps the dirs of open runs, removes those of closed runs and old unknown ones', async () => {
  const dirs = new SnapshotWorkDirs(root);
  const open = await snapshotRun(true);
  const closedMarked = await snapshotRun(false);
  const closedUnmarked = await snapshotRun(false);
  const unknown = randomUUID();
  await dirs.create(open.runId, false);
  await dirs.writeOwner(open.runId, open.workflowId);
  await dirs.create(closedMarked.runId, false);
  await dirs.writeOwner(closedMarked.runId, closedMarked.workflowId);
  await dirs.create(closedUnmarked.runId, true);
  await dirs.create(unknown, false);
  // The unmarked closed run is found through visibility, which may lag behind its close.
  await eventually(async () => {
    for await (const run of stack.temporal.workflow.list({ query: `RunId = '${closedUnmarked.runId}'` })) if (run.status.name === 'COMPLETED') return true;
    return undefined;
  }, 'visibility to index the closed run');

  const first = await sweepClosedWorkDirs({ client: stack.temporal, workDirs: dirs, log });
  expect(first.removed.sort()).toEqual([closedMarked.runId, closedUnmarked.runId].sort());
  expect((await dirs.list()).sort()).toEqual([open.runId, unknown].sort());

  // Two hours later the unknown, unmarked dir counts as abandoned; the open run's dir still stays.
  const later = await sweepClosedWorkDirs({ client: stack.temporal, workDirs: dirs, log, now: () => Date.now() + 2 * 3_600_000 });
  expect(later.removed).toEqual([unknown]);
  expect(await dirs.list()).toEqual([open.runId]);

  open.release();
  await stack.temporal.workflow.getHandle(open.workflowId).result();
  const after = await sweepClosedWorkDirs({ client: stack.temporal, workDirs: dirs, log });
  expect(after.removed).toEqual([open.runId]);
  expect(await dirs.list()).toEqual([]);
});
