// Host worker start-up sweep over real Temporal runs: a work dir whose run is open is kept, one
// whose run closed is removed (found through the owner marker, or through visibility by RunId
// when the marker is missing), and an unknown unmarked dir is removed only once it is old. With
// the host's releaser, a closed run's qemu-nbd export is stopped before its dir goes, while an open
// run's export keeps serving.
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportPaths } from '../../../src/host/export-paths';
import { findReadOnlyExport, startReadOnlyExport, stopReadOnlyExport } from '../../../src/host/nbd-export';
import { LibvirtExportReleaser } from '../../../src/host/orphan-exports';
import { createQcow2 } from '../../../src/host/qemu-img';
import { SnapshotWorkDirs } from '../../../src/host/snapshot-workdir';
import { Libvirt } from '../../../src/libvirt';
import { NbdClient } from '../../../src/nbd';
import { createLogger } from '../../../src/observability';
import { sweepClosedWorkDirs } from '../../../src/reconciler';
import { snapshotWorkflowId } from '../../../src/contract';
import { createImage, eventually } from '../../support/api-http';
import { TOKENS, startApiStack, type ApiStack } from '../../support/api-stack';
import { DEFAULT_TEST_URI } from '../../support/instance-fixture';

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

it("stops a closed run's qemu-nbd export before removing its dir, and leaves an open run's export serving", async () => {
  const exportsRoot = await mkdtemp(join(tmpdir(), 'sweep-exports-'));
  const libvirt = await Libvirt.connect(DEFAULT_TEST_URI);
  const dirs = new SnapshotWorkDirs(exportsRoot);
  const open = await snapshotRun(true);
  const closed = await snapshotRun(false);
  const disk = join(exportsRoot, 'disk.qcow2');
  const pids: Record<string, number> = {};
  try {
    await createQcow2(disk, { sizeBytes: 4 * 1024 * 1024 });
    for (const run of [open, closed]) {
      const dir = await dirs.create(run.runId, false);
      await dirs.writeOwner(run.runId, run.workflowId);
      pids[run.runId] = (await startReadOnlyExport({ diskPath: disk, format: 'qcow2', backing: [], exportName: 'vda', ...exportPaths(dir) })).pid;
    }
    const releaser = new LibvirtExportReleaser({ client: async () => libvirt }, { log });
    const report = await sweepClosedWorkDirs({ client: stack.temporal, workDirs: dirs, log, releaser });
    expect(report).toMatchObject({ removed: [closed.runId], kept: [open.runId], stoppedExports: [closed.runId], abortedJobs: [] });
    expect(await dirs.list()).toEqual([open.runId]);
    // The closed run's qemu-nbd is gone (or a zombie waiting for init), the open one's still serves.
    expect(await runs(pids[closed.runId] as number)).toBe(false);
    const openPaths = exportPaths(dirs.pathFor(open.runId));
    expect(await findReadOnlyExport(openPaths)).toBe(pids[open.runId]);
    const nbd = await NbdClient.connect({ socketPath: openPaths.socketPath, exportName: 'vda' });
    expect(nbd.exportSize).toBe(4 * 1024 * 1024);
    await nbd.close();
  } finally {
    open.release();
    await stack.temporal.workflow.getHandle(open.workflowId).result().catch(() => undefined);
    await stopReadOnlyExport(exportPaths(dirs.pathFor(open.runId))).catch(() => undefined);
    await stopReadOnlyExport(exportPaths(dirs.pathFor(closed.runId))).catch(() => undefined);
    await libvirt.close();
    await rm(exportsRoot, { recursive: true, force: true });
  }
});

/** Whether the process still runs (a zombie does not). */
async function runs(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
