// Several nodes (issue 7, "Several nodes"): two compute APIs and two control workers on one
// PostgreSQL, two hosts each with its own libvirt daemon and real guests. Concurrent createImage
// requests across all instances through both APIs; one API and one control worker are killed -9
// mid-way. Checked: every 202 ends in an active image, nothing else is left (no image that is not
// active, task_state None), never two runs for one request (exactly one run and one image per
// 202), and every host activity of a run was scheduled on its own host's queue.
// Scale with SNAP_MULTINODE_INSTANCES_PER_HOST / SNAP_MULTINODE_ROUNDS (`npm run multinode`).
import { z } from 'zod';
import { hostTaskQueue, snapshotWorkflowId } from '../../../src/contract';
import { ImageIdKey } from '../../../src/temporal/search-attributes';
import { createImage, eventually } from '../../support/api-http';
import { MN_TOKENS, startMultinodeStack, type MultinodeStack } from '../../support/multinode-stack';

const knobs = z
  .object({
    SNAP_MULTINODE_INSTANCES_PER_HOST: z.coerce.number().int().min(1).max(20).default(2),
    SNAP_MULTINODE_ROUNDS: z.coerce.number().int().min(1).max(100).default(2),
  })
  .parse(process.env);

// Real guests and eight service processes on two cores: the default run takes ~2 min, scaled runs longer.
jest.setTimeout(20 * 60_000);

let stack: MultinodeStack | undefined;
afterAll(async () => {
  await stack?.stop();
});

interface Outcome {
  accepted: string[];
  connectionErrors: number;
  conflicts: number;
}

it('loses nothing and duplicates nothing when an API and a control worker die under load', async () => {
  const t0 = Date.now();
  stack = await startMultinodeStack({ instancesPerHost: knobs.SNAP_MULTINODE_INSTANCES_PER_HOST, reconcileGraceS: 5, reconcileIntervalS: 2 });
  const s = stack;
  const setupMs = Date.now() - t0;
  const instances = s.hosts.flatMap((h) => h.instances.map((i) => ({ instance: i, host: h.name })));
  let completed = 0;
  let apiTurn = 0;

  const drive = async (uuid: string): Promise<Outcome> => {
    const outcome: Outcome = { accepted: [], connectionErrors: 0, conflicts: 0 };
    while (outcome.accepted.length < knobs.SNAP_MULTINODE_ROUNDS) {
      const alive = s.apis.filter((a) => a.proc.running);
      const api = alive[apiTurn++ % alive.length];
      if (api === undefined) throw new Error('no API left');
      const answer = await createImage(api.url, MN_TOKENS.demo, uuid, { name: `mn-${outcome.accepted.length}` }, { 'OpenStack-API-Version': 'compute 2.45' }).catch(() => undefined);
      if (answer === undefined) {
        outcome.connectionErrors += 1;
      } else if (answer.status === 202) {
        outcome.accepted.push((answer.json as { image_id: string }).image_id);
        await s.temporal.workflow.getHandle(snapshotWorkflowId(uuid)).result();
        completed += 1;
        continue;
      } else if (answer.status === 409) {
        // Busy: a run of ours still closing, or an orphan of the killed API awaiting the reconciler.
        outcome.conflicts += 1;
      } else {
        throw new Error(`unexpected ${answer.status}: ${answer.text}`);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    return outcome;
  };

  const loadStart = Date.now();
  const driving = Promise.all(instances.map((i) => drive(i.instance.uuid)));
  // Kill -9 one API and one control worker once the load is under way.
  await eventually(async () => (completed >= 1 ? true : undefined), 'a first snapshot to complete', 180_000);
  const [api1] = s.apis;
  const [control1] = s.controls;
  await api1?.proc.kill();
  await control1?.kill();
  const outcomes = await driving;
  const loadMs = Date.now() - loadStart;

  let runs = 0;
  for (const [index, { instance, host }] of instances.entries()) {
    const outcome = outcomes[index];
    if (outcome === undefined) throw new Error('no outcome');
    // Orphans of the killed API (if any) are cleaned by the surviving control worker's reconciler.
    await eventually(async () => ((await s.store.getOrThrow(instance.uuid)).taskState === null ? true : undefined), 'task_state None', 60_000);
    const images = await eventually(async () => {
      const mine = (await s.admin.list()).filter((i) => i.properties.instance_uuid === instance.uuid);
      return mine.every((i) => i.status === 'active') ? mine : undefined;
    }, 'only active images left', 60_000);
    const list = [];
    for await (const run of s.temporal.workflow.list({ query: `WorkflowId = '${snapshotWorkflowId(instance.uuid)}'` })) list.push(run);
    runs += list.length;
    // One run and one active image per 202, nothing more (a request cut off by the kill either
    // never started a run — cleaned — or its run completed and its image is counted here too).
    expect(list.every((r) => r.status.name === 'COMPLETED')).toBe(true);
    const runImages = list.map((r) => r.typedSearchAttributes.get(ImageIdKey)).sort();
    expect(images.map((i) => i.id).sort()).toEqual(runImages);
    expect(runImages).toEqual(expect.arrayContaining(outcome.accepted));
    expect(list.length - outcome.accepted.length).toBeLessThanOrEqual(outcome.connectionErrors);
    // Every host activity of every run went to the instance's own host queue.
    for (const run of list) {
      const history = await s.temporal.workflow.getHandle(run.workflowId, run.runId).fetchHistory();
      const queues = (history.events ?? []).map((e) => e.activityTaskScheduledEventAttributes?.taskQueue?.name).filter((q): q is string => typeof q === 'string' && q.startsWith('snapshot-host-'));
      expect(queues.length).toBeGreaterThan(0);
      expect(new Set(queues)).toEqual(new Set([hostTaskQueue(host)]));
    }
  }
  const accepted = outcomes.reduce((n, o) => n + o.accepted.length, 0);
  process.stdout.write(
    `multinode: ${instances.length} instances on 2 hosts (2 libvirt daemons), ${accepted} × 202, ${runs} runs, all active; ` +
      `${outcomes.reduce((n, o) => n + o.connectionErrors, 0)} requests cut by the API kill, ${outcomes.reduce((n, o) => n + o.conflicts, 0)} × 409; ` +
      `setup ${(setupMs / 1000).toFixed(1)} s, load ${(loadMs / 1000).toFixed(1)} s\n`,
  );
});
