// closeExportAndRetain: a live run's export closed and its checkpoints retained in one activity, on
// one domain lookup, the close first (no job of ours reads the disk when a checkpoint goes), the
// work dir handed to the removal after the answer. A close that fails fails the attempt and leaves
// the dir for the retry; a retention that fails is reported, never thrown.
import { existsSync } from 'node:fs';
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { Semaphore } from '../../../src/activities/activity-support';
import type { HostActivityDeps } from '../../../src/activities/host-activity-deps';
import { createOnePassActivities } from '../../../src/activities/one-pass-activities';
import type { DomainDescription } from '../../../src/contract';
import { exportPaths } from '../../../src/host/export-paths';
import { SnapshotWorkDirs } from '../../../src/host/snapshot-workdir';
import { LibvirtError, VIR_ERR_NO_DOMAIN, VIR_ERR_NO_DOMAIN_BACKUP, type Domain, type DomainCheckpoint, type Libvirt } from '../../../src/libvirt';

const KEY = '3f6c1f0e-2b8a-4d51-9a43-0c7f2d1e5b60';
const DESCRIPTION = { diskPath: '/var/lib/nova/instances/i/disk', sourceFormat: 'qcow2', backingChain: [], diskTarget: 'vda' } as unknown as DomainDescription;

function libvirtError(code: number, message: string): LibvirtError {
  return new LibvirtError({ code, domain: 10, message, level: 2, str1: null, str2: null, str3: null, int1: 0, int2: 0 });
}

/** Records the calls in order, so that what happened before what can be asserted. */
class WorkDirsSeen extends SnapshotWorkDirs {
  constructor(
    root: string,
    private readonly calls: string[],
  ) {
    super(root);
  }

  override removeAfterAnswer(key: string, onFailure: (err: unknown) => void): void {
    this.calls.push('removeAfterAnswer');
    super.removeAfterAnswer(key, onFailure);
  }
}

interface FakeLibvirt {
  calls: string[];
  client: Libvirt;
  /** a backup job of ours serves the run's socket */
  job: { running: boolean };
}

/** A domain with a job of ours on the run's socket and checkpoints of ours (snap-old, snap-new) and someone else's. */
function fakeLibvirt(workDir: string, options: { domainGone?: boolean; abortFails?: boolean; listFails?: boolean } = {}): FakeLibvirt {
  const calls: string[] = [];
  const job = { running: true };
  const paths = exportPaths(workDir);
  const [socketPath, scratchFile] = [paths.socketPath, paths.scratchFile('vda')];
  const cp = (name: string) => ({ name }) as unknown as DomainCheckpoint;
  const client = {
    domainLookupByName: async (name: string) => {
      calls.push('domainLookupByName');
      if (options.domainGone === true) throw libvirtError(VIR_ERR_NO_DOMAIN, `no domain ${name}`);
      return { name } as unknown as Domain;
    },
    backup: {
      getXMLDesc: async () => {
        if (!job.running) throw libvirtError(VIR_ERR_NO_DOMAIN_BACKUP, 'no backup job');
        return `<domainbackup mode='pull'><server transport='unix' socket='${socketPath}'/><disks><disk name='vda' backup='yes' type='file'><scratch file='${scratchFile}'/></disk></disks></domainbackup>`;
      },
    },
    jobs: {
      abort: async () => {
        calls.push('abort job');
        if (options.abortFails === true) throw libvirtError(1, 'internal error');
        job.running = false;
        // QEMU removes its socket as the job ends.
        await unlink(socketPath);
      },
    },
    checkpoints: {
      listAll: async () => {
        calls.push(job.running ? 'list checkpoints while the job runs' : 'list checkpoints');
        if (options.listFails === true) throw libvirtError(1, 'listing failed');
        return [cp('snap-old'), cp('snap-new'), cp('someone-elses')];
      },
      delete: async (checkpoint: DomainCheckpoint) => void calls.push(`delete ${checkpoint.name}`),
      lookupByName: async (_dom: Domain, name: string) => cp(name),
      getXMLDesc: async (checkpoint: DomainCheckpoint) => `<domaincheckpoint><name>${checkpoint.name}</name></domaincheckpoint>`,
    },
  } as unknown as Libvirt;
  return { calls, client, job };
}

describe('closeExportAndRetain', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'close-and-retain-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  async function setup(options: Parameters<typeof fakeLibvirt>[1] = {}) {
    const calls: string[] = [];
    const workDirs = new WorkDirsSeen(join(root, 'snapshots'), calls);
    const dir = await workDirs.ensure(KEY, true);
    const paths = exportPaths(dir);
    for (const file of [paths.socketPath, paths.scratchFile('vda'), join(dir, 'export.json')]) await writeFile(file, '');
    const libvirt = fakeLibvirt(dir, options);
    const session = { client: async () => libvirt.client };
    const deps = { config: { streamBandwidthBytesPerSecond: 0 }, session, workDirs } as unknown as HostActivityDeps;
    const activities = createOnePassActivities(deps, { extracts: new Semaphore(1), uploads: new Semaphore(1) });
    const run = () => new MockActivityEnvironment().run(activities.closeExportAndRetain, { domainName: 'vm', workDirKey: KEY, keep: 'snap-new', description: DESCRIPTION });
    return { calls, workDirs, dir, libvirt, run };
  }

  it('closes, then retains, on one domain lookup; answers with the kept checkpoint; the dir goes after the answer', async () => {
    const { workDirs, dir, libvirt, run, calls } = await setup();
    await expect(run()).resolves.toEqual({ checkpointXml: '<domaincheckpoint><name>snap-new</name></domaincheckpoint>', deleted: ['snap-old'] });
    expect(libvirt.calls).toEqual(['domainLookupByName', 'abort job', 'list checkpoints', 'delete snap-old']);
    expect(libvirt.job.running).toBe(false);
    expect(calls).toEqual(['removeAfterAnswer']);
    expect(await workDirs.list()).toEqual([]);
    expect(existsSync(dir)).toBe(false);
  });

  it('a retry after the close (a worker killed between the close and the retention) finds nothing to close and retains', async () => {
    const { workDirs, libvirt, run } = await setup();
    libvirt.job.running = false;
    await expect(run()).resolves.toMatchObject({ deleted: ['snap-old'] });
    expect(libvirt.calls).toEqual(['domainLookupByName', 'list checkpoints', 'delete snap-old']);
    expect(await workDirs.list()).toEqual([]);
  });

  it('a close that fails fails the attempt: no checkpoint goes, the dir stays for the retry', async () => {
    const { workDirs, libvirt, run, calls } = await setup({ abortFails: true });
    await expect(run()).rejects.toThrow('internal error');
    expect(libvirt.calls).toEqual(['domainLookupByName', 'abort job']);
    expect(calls).toEqual([]);
    expect(await workDirs.list()).toEqual([KEY]);
  });

  it('a retention that fails is reported, not thrown: the export is closed and the dir goes all the same', async () => {
    const { workDirs, libvirt, run } = await setup({ listFails: true });
    await expect(run()).resolves.toEqual({ checkpointXml: null, deleted: [], error: 'listing failed' });
    expect(libvirt.calls).toEqual(['domainLookupByName', 'abort job', 'list checkpoints']);
    expect(await workDirs.list()).toEqual([]);
  });

  it('a domain gone (the instance deleted): nothing to close, the retention says why, the dir goes', async () => {
    const { workDirs, run } = await setup({ domainGone: true });
    await expect(run()).resolves.toMatchObject({ checkpointXml: null, deleted: [], error: 'no domain vm' });
    expect(await workDirs.list()).toEqual([]);
  });
});
