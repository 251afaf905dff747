// The start-up sweep against real libvirt backup jobs on an OS-less guest (a pull backup needs no
// OS): a job serving from a closed run's work dir is aborted before the dir goes, one serving
// from a run dir that is gone already is aborted too, and one serving from an open run's dir (or
// from outside the snapshots dir) keeps running. One domain runs one backup job at a time, so the
// cases take turns. A guest a closed cold run left paused (its restart marker) is resumed, and one it
// left managed-saved (its saved marker) started from its save, unless a newer run of the instance's
// snapshot workflow is open; a guest saved by hand, with no marker, stays saved.
import type { Client } from '@temporalio/client';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildPullBackupXml } from '../../../src/host/backup-xml';
import { exportPaths } from '../../../src/host/export-paths';
import { LibvirtExportReleaser } from '../../../src/host/orphan-exports';
import { namedDomain, writeGuestMarker, type SavedGuestMarker } from '../../../src/host/guest-markers';
import { SnapshotWorkDirs } from '../../../src/host/snapshot-workdir';
import { POWER_STATE_RUNNING } from '../../../src/contract';
import { DomainJobType, DomainState, isBackupJobRunning, isLibvirtError, VIR_ERR_OPERATION_INVALID } from '../../../src/libvirt';
import { createLogger } from '../../../src/observability';
import { sweepClosedWorkDirs } from '../../../src/reconciler';
import { connectClient } from '../../../src/temporal/connect';
import { createInstanceFixture, type InstanceFixture } from '../../support/instance-fixture';

const log = createLogger({ name: 'orphan-jobs-test', level: 'silent' });

let fixture: InstanceFixture;
let temporal: Client;
let root: string;
let workDirs: SnapshotWorkDirs;
let releaser: LibvirtExportReleaser;

beforeAll(async () => {
  fixture = await createInstanceFixture({ prefix: 'snaptest-orphan' });
  temporal = await connectClient();
  root = await mkdtemp(path.join(os.tmpdir(), 'orphan-jobs-'));
  workDirs = new SnapshotWorkDirs(root);
  releaser = new LibvirtExportReleaser({ client: async () => fixture.client }, { log });
});

afterEach(async () => {
  await fixture.client.jobs.abort(fixture.instance.domain).catch((e: unknown) => {
    if (!isLibvirtError(e, VIR_ERR_OPERATION_INVALID)) throw e;
  });
});

afterAll(async () => {
  await fixture?.cleanup();
  await temporal?.connection.close();
  if (root) await rm(root, { recursive: true, force: true });
});

/** A pull backup of vda served on `socketPath`, its scratch file beside it. */
async function beginBackup(socketPath: string, scratchFile: string): Promise<void> {
  await fixture.client.backup.begin(fixture.instance.domain, buildPullBackupXml({ socketPath, disks: [{ target: 'vda', scratchFile }] }));
  expect(isBackupJobRunning(await fixture.client.jobs.getStats(fixture.instance.domain))).toBe(true);
  expect(existsSync(socketPath)).toBe(true);
}

async function jobType(): Promise<DomainJobType> {
  return (await fixture.client.jobs.getStats(fixture.instance.domain)).type;
}

/** A work dir whose owner marker names a workflow Temporal has never seen: a closed run. */
async function closedRunDir(): Promise<{ runId: string; dir: string }> {
  const runId = randomUUID();
  const dir = await workDirs.create(runId, true);
  await workDirs.writeOwner(runId, `orphan-test-${runId}`);
  return { runId, dir };
}

it("aborts the backup job serving from a closed run's work dir, then removes the dir", async () => {
  const { runId, dir } = await closedRunDir();
  const paths = exportPaths(dir);
  await beginBackup(paths.socketPath, paths.scratchFile('vda'));

  const report = await sweepClosedWorkDirs({ client: temporal, workDirs, log, releaser });
  expect(report.removed).toEqual([runId]);
  expect(report.abortedJobs).toEqual([{ domain: fixture.instance.name, socketPath: paths.socketPath }]);
  expect(await jobType()).toBe(DomainJobType.None);
  expect(existsSync(paths.socketPath)).toBe(false);
  expect(existsSync(dir)).toBe(false);
});

it('aborts a job whose run dir is gone already', async () => {
  const { runId, dir } = await closedRunDir();
  const paths = exportPaths(dir);
  await beginBackup(paths.socketPath, paths.scratchFile('vda'));
  // Removed by hand (or wiped by an earlier sweep without a releaser): QEMU still serves the job.
  await rm(dir, { recursive: true, force: true });
  expect(isBackupJobRunning(await fixture.client.jobs.getStats(fixture.instance.domain))).toBe(true);

  const report = await sweepClosedWorkDirs({ client: temporal, workDirs, log, releaser });
  expect(report.removed).toEqual([]);
  expect(report.abortedJobs).toEqual([{ domain: fixture.instance.name, socketPath: paths.socketPath }]);
  expect(await jobType()).toBe(DomainJobType.None);
  expect(await workDirs.list()).not.toContain(runId);
});

it("leaves running the job of an open run's dir, and one serving from outside the snapshots dir", async () => {
  // A fresh dir without an owner marker that visibility does not know: kept, as a run just starting.
  const runId = randomUUID();
  const dir = await workDirs.create(runId, true);
  const paths = exportPaths(dir);
  await beginBackup(paths.socketPath, paths.scratchFile('vda'));
  const report = await sweepClosedWorkDirs({ client: temporal, workDirs, log, releaser });
  expect(report).toMatchObject({ removed: [], kept: [runId], abortedJobs: [] });
  expect(isBackupJobRunning(await fixture.client.jobs.getStats(fixture.instance.domain))).toBe(true);
  expect(existsSync(paths.socketPath)).toBe(true);
  await fixture.client.jobs.abort(fixture.instance.domain);
  await workDirs.remove(runId);

  // An operator's job elsewhere on the host is never ours to end.
  const elsewhere = path.join(fixture.dir, 'operator.sock');
  await beginBackup(elsewhere, path.join(fixture.dir, 'operator.scratch'));
  expect((await sweepClosedWorkDirs({ client: temporal, workDirs, log, releaser })).abortedJobs).toEqual([]);
  expect(isBackupJobRunning(await fixture.client.jobs.getStats(fixture.instance.domain))).toBe(true);
});

it('keeps a closed run\'s dir when what it holds cannot be released (libvirt unreachable), and still answers', async () => {
  const { runId, dir } = await closedRunDir();
  const unreachable = {
    releaseDir: jest.fn(() => Promise.reject(new Error('libvirt unreachable'))),
    abortJobsUnder: jest.fn(() => Promise.reject(new Error('libvirt unreachable'))),
    returnAbandonedGuest: jest.fn(() => Promise.reject(new Error('libvirt unreachable'))),
  };
  const report = await sweepClosedWorkDirs({ client: temporal, workDirs, log, releaser: unreachable });
  expect(report).toMatchObject({ removed: [], kept: [runId], abortedJobs: [] });
  expect(unreachable.releaseDir).toHaveBeenCalledWith(dir);
  expect(existsSync(dir)).toBe(true);
  // The next start-up, with libvirt back, releases and removes it.
  expect((await sweepClosedWorkDirs({ client: temporal, workDirs, log, releaser })).removed).toEqual([runId]);
});

describe('a guest a closed cold run restarted paused and never resumed', () => {
  async function domainState(): Promise<DomainState> {
    return (await fixture.client.domainGetState(fixture.instance.domain)).state;
  }
  afterEach(async () => {
    if ((await domainState()) === DomainState.Paused) await fixture.client.domainResume(fixture.instance.domain);
  });

  it('is resumed, and the dir removed, when no run of its snapshot workflow is open', async () => {
    const { runId, dir } = await closedRunDir();
    await writeGuestMarker(dir, 'restartedPaused', namedDomain(fixture.instance.domain));
    await fixture.client.domainSuspend(fixture.instance.domain);

    const report = await sweepClosedWorkDirs({ client: temporal, workDirs, log, releaser });
    expect(report).toMatchObject({ removed: [runId], returnedGuests: [fixture.instance.name] });
    expect(await domainState()).toBe(DomainState.Running);
    expect(existsSync(dir)).toBe(false);
  });

  it('stays paused, its dir kept, while a newer run of the same workflow is open; resumed once it closes', async () => {
    const runId = randomUUID();
    const workflowId = `orphan-test-newer-${runId}`;
    const dir = await workDirs.create(runId, true);
    await workDirs.writeOwner(runId, workflowId);
    await writeGuestMarker(dir, 'restartedPaused', namedDomain(fixture.instance.domain));
    await fixture.client.domainSuspend(fixture.instance.domain);
    // The newer run: open as long as no worker takes it (this dir's own run id is not Temporal's, so it counts as closed).
    const newer = await temporal.workflow.start('noSuchWorkflow', { taskQueue: `orphan-test-${runId}`, workflowId });
    try {
      const held = await sweepClosedWorkDirs({ client: temporal, workDirs, log, releaser });
      expect(held).toMatchObject({ removed: [], kept: [runId], returnedGuests: [] });
      expect(await domainState()).toBe(DomainState.Paused);
    } finally {
      await newer.terminate('test: the newer run closes');
    }
    const after = await sweepClosedWorkDirs({ client: temporal, workDirs, log, releaser });
    expect(after).toMatchObject({ removed: [runId], returnedGuests: [fixture.instance.name] });
    expect(await domainState()).toBe(DomainState.Running);
  });

  it('keeps a dir whose marker names no domain, and leaves the guest as it is', async () => {
    const { runId, dir } = await closedRunDir();
    await writeFile(exportPaths(dir).restartedGuest, '');
    const report = await sweepClosedWorkDirs({ client: temporal, workDirs, log, releaser });
    expect(report).toMatchObject({ removed: [], kept: [runId], returnedGuests: [] });
    await rm(dir, { recursive: true, force: true });
  });
});

describe('a guest a closed cold run managed-saved and never restored', () => {
  async function facts(): Promise<{ state: DomainState; saved: boolean }> {
    const dom = fixture.instance.domain;
    return { state: (await fixture.client.domainGetState(dom)).state, saved: await fixture.client.domainHasManagedSaveImage(dom) };
  }
  const savedMarker = (): SavedGuestMarker => ({ ...namedDomain(fixture.instance.domain), powerState: POWER_STATE_RUNNING });
  afterEach(async () => {
    const dom = fixture.instance.domain;
    if ((await facts()).state === DomainState.Shutoff) await fixture.client.domainCreateWithFlags(dom, 0);
  });

  it('is started from its save, and the dir removed, when no run of its snapshot workflow is open', async () => {
    const { runId, dir } = await closedRunDir();
    await writeGuestMarker(dir, 'saved', savedMarker());
    await fixture.client.domainManagedSave(fixture.instance.domain, 0);

    const report = await sweepClosedWorkDirs({ client: temporal, workDirs, log, releaser });
    expect(report).toMatchObject({ removed: [runId], returnedGuests: [fixture.instance.name] });
    // Started from the save image, which libvirt deletes once it has restored from it.
    expect(await facts()).toEqual({ state: DomainState.Running, saved: false });
    expect(existsSync(dir)).toBe(false);
  });

  it('stays saved, its dir kept, while a newer run of the same workflow is open; started once it closes', async () => {
    const runId = randomUUID();
    const workflowId = `orphan-test-saved-${runId}`;
    const dir = await workDirs.create(runId, false);
    await workDirs.writeOwner(runId, workflowId);
    await writeGuestMarker(dir, 'saved', savedMarker());
    await fixture.client.domainManagedSave(fixture.instance.domain, 0);
    const newer = await temporal.workflow.start('noSuchWorkflow', { taskQueue: `orphan-test-${runId}`, workflowId });
    try {
      const held = await sweepClosedWorkDirs({ client: temporal, workDirs, log, releaser });
      expect(held).toMatchObject({ removed: [], kept: [runId], returnedGuests: [] });
      expect(await facts()).toEqual({ state: DomainState.Shutoff, saved: true });
    } finally {
      await newer.terminate('test: the newer run closes');
    }
    const after = await sweepClosedWorkDirs({ client: temporal, workDirs, log, releaser });
    expect(after).toMatchObject({ removed: [runId], returnedGuests: [fixture.instance.name] });
    expect(await facts()).toEqual({ state: DomainState.Running, saved: false });
  });

  it('is left as found when it was started meanwhile, or saved again by hand after its marker went', async () => {
    // Started by someone else since: the marker goes, nothing is done to the guest.
    const first = await closedRunDir();
    await writeGuestMarker(first.dir, 'saved', savedMarker());
    const started = await sweepClosedWorkDirs({ client: temporal, workDirs, log, releaser });
    expect(started).toMatchObject({ removed: [first.runId], returnedGuests: [] });
    expect(await facts()).toEqual({ state: DomainState.Running, saved: false });

    // An operator's managedsave, beside a closed run's dir that names no guest: not ours to start.
    const second = await closedRunDir();
    await fixture.client.domainManagedSave(fixture.instance.domain, 0);
    const byHand = await sweepClosedWorkDirs({ client: temporal, workDirs, log, releaser });
    expect(byHand).toMatchObject({ removed: [second.runId], returnedGuests: [] });
    expect(await facts()).toEqual({ state: DomainState.Shutoff, saved: true });
  });
});
