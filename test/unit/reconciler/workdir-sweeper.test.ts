// The work-dir sweep's decision over a dir whose run holds its guest, against a fake Temporal (which
// runs are open) and a fake releaser (what it is asked to bring back): only a closed run's guest is
// brought back, and only when no newer run of the instance's workflow is open; a dir whose guest
// nobody here could bring back keeps its marker.
import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/common';
import { POWER_STATE_RUNNING } from '../../../src/contract';
import { holdsGuest, namedDomain, writeGuestMarker } from '../../../src/host/guest-markers';
import type { ExportReleaser } from '../../../src/host/orphan-exports';
import { SnapshotWorkDirs } from '../../../src/host/snapshot-workdir';
import { createLogger } from '../../../src/observability';
import { sweepClosedWorkDirs } from '../../../src/reconciler/workdir-sweeper';

const log = createLogger({ name: 'sweep-unit', level: 'silent' });
const DOM = { name: 'instance-00000003', uuid: '8d7c6b5a-4e3f-4a1b-9c8d-7e6f5a4b3c2d', id: 5 };

/** Temporal as the sweep asks it: describe by id (and run id); only `open` runs are RUNNING. */
function temporal(open: { workflowId: string; runId?: string }[]): Client {
  const describe = (workflowId: string, runId?: string) => async () => {
    const run = open.find((o) => o.workflowId === workflowId && (runId === undefined || o.runId === undefined || o.runId === runId));
    if (run === undefined) throw new WorkflowNotFoundError('not found', workflowId, runId);
    return { status: { name: 'RUNNING' } };
  };
  const fake = {
    workflow: {
      getHandle: (workflowId: string, runId?: string) => ({ describe: describe(workflowId, runId) }),
      list: async function* () {},
    },
  };
  return fake as unknown as Client;
}

/** A releaser that records what it is asked, in order: `returned` the dirs whose guest it brought back. */
function releaser(): ExportReleaser & { returned: string[]; calls: string[] } {
  const returned: string[] = [];
  const calls: string[] = [];
  return {
    returned,
    calls,
    releaseDir: async () => {
      calls.push('release the export');
      return { stoppedExport: true, abortedJobs: [] };
    },
    abortJobsUnder: async () => [],
    returnAbandonedGuest: async (dir: string) => {
      calls.push('return the guest');
      returned.push(dir);
      await rm(join(dir, 'saved-guest'), { force: true });
      return { domainName: DOM.name, outcome: 'started from its save' };
    },
  };
}

describe('sweepClosedWorkDirs over a run that holds its guest saved', () => {
  let root: string;
  let dirs: SnapshotWorkDirs;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'sweep-unit-'));
    dirs = new SnapshotWorkDirs(root);
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  async function savedRunDir(workflowId: string): Promise<{ runId: string; dir: string }> {
    const runId = randomUUID();
    const dir = await dirs.ensure(runId, false);
    await dirs.writeOwner(runId, workflowId);
    await writeGuestMarker(dir, 'saved', { ...namedDomain(DOM), powerState: POWER_STATE_RUNNING });
    return { runId, dir };
  }

  it("ends a closed run's export, then brings back its guest (QEMU needs the disk's write lock), and removes its dir", async () => {
    const { runId, dir } = await savedRunDir('snapshot-a');
    const host = releaser();
    const report = await sweepClosedWorkDirs({ client: temporal([]), workDirs: dirs, log, releaser: host });
    expect(report).toMatchObject({ removed: [runId], kept: [], stoppedExports: [runId], returnedGuests: [DOM.name] });
    expect(host.calls).toEqual(['release the export', 'return the guest']);
    expect(host.returned).toEqual([dir]);
    expect(await dirs.list()).toEqual([]);
  });

  it('leaves the guest of a run that is still open: the run restores it itself', async () => {
    const { runId, dir } = await savedRunDir('snapshot-b');
    const host = releaser();
    const report = await sweepClosedWorkDirs({ client: temporal([{ workflowId: 'snapshot-b', runId }]), workDirs: dirs, log, releaser: host });
    expect(report).toMatchObject({ removed: [], kept: [runId], returnedGuests: [] });
    expect(host.returned).toEqual([]);
    expect(holdsGuest(dir, 'saved')).toBe(true);
  });

  it('leaves the guest while a newer run of the same workflow is open, and brings it back once none is', async () => {
    const { runId, dir } = await savedRunDir('snapshot-c');
    const host = releaser();
    // The newer run: another run id of the same workflow id.
    const held = await sweepClosedWorkDirs({ client: temporal([{ workflowId: 'snapshot-c', runId: randomUUID() }]), workDirs: dirs, log, releaser: host });
    expect(held).toMatchObject({ removed: [], kept: [runId], returnedGuests: [] });
    expect(host.returned).toEqual([]);
    expect(holdsGuest(dir, 'saved')).toBe(true);

    const after = await sweepClosedWorkDirs({ client: temporal([]), workDirs: dirs, log, releaser: host });
    expect(after).toMatchObject({ removed: [runId], returnedGuests: [DOM.name] });
    expect(host.returned).toEqual([dir]);
  });

  it('without a releaser keeps the marker (and reports the dir kept), removing only the run files', async () => {
    const { runId, dir } = await savedRunDir('snapshot-d');
    const plain = randomUUID();
    await dirs.create(plain, false);
    await dirs.writeOwner(plain, 'snapshot-e');
    const report = await sweepClosedWorkDirs({ client: temporal([]), workDirs: dirs, log });
    expect(report).toMatchObject({ removed: [plain], kept: [runId], returnedGuests: [] });
    expect((await readdir(dir)).sort()).toEqual(['.owner.json', 'saved-guest']);
  });
});
