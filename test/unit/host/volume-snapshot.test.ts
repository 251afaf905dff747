// Every volume at one point in time: the Cinder create calls of all volumes (and only they) happen inside one freeze,
// the thaw follows once Cinder has taken every snapshot (left `creating`; a deadline bounds the wait),
// the freeze window is reported; an
// agent that cannot freeze gives crash-consistent snapshots unless the image requires quiesce, in
// which case none is asked for; a stopped guest is not frozen; a failed create still thaws.
import { randomUUID } from 'node:crypto';
import { CinderError, type CinderSnapshot } from '../../../src/cinder';
import { QuiesceRequired } from '../../../src/host/quiesce';
import { snapshotVolumesAtOnePoint, SnapshotsNotTakenInFreeze } from '../../../src/host/volume-snapshot';
import { LibvirtError, type Domain, type Libvirt } from '../../../src/libvirt';
import { FakeCinder } from '../../support/stubs/fake-cinder';

const dom = { name: 'bfv', uuid: randomUUID(), id: 1 } as Domain;
const volumes = [
  { volumeId: randomUUID(), device: 'vda', root: true, sizeGiB: 10 },
  { volumeId: randomUUID(), device: 'vdb', root: false, sizeGiB: 2 },
];

function setup(freeze: 'ok' | 'no-agent', failCreate = false, takenAfterMs: number | null = 30) {
  const calls: string[] = [];
  const libvirt = {
    domainFSFreeze: async () => {
      calls.push('freeze');
      if (freeze === 'no-agent') throw new LibvirtError({ code: 86, domain: 10, level: 2, message: 'QEMU guest agent is not connected', str1: null, str2: null, str3: null, int1: 0, int2: 0 });
      return 2;
    },
    domainFSThaw: async () => {
      calls.push('thaw');
      return 2;
    },
  } as unknown as Libvirt;
  const fake = new FakeCinder();
  const cinder = {
    listSnapshots: fake.listSnapshots.bind(fake),
    showSnapshot: fake.showSnapshot.bind(fake),
    deleteSnapshot: fake.deleteSnapshot.bind(fake),
    async createSnapshot(req: { volumeId: string; name: string; metadata: Record<string, string> }): Promise<CinderSnapshot> {
      calls.push(`create ${req.volumeId === volumes[0]?.volumeId ? 'vda' : 'vdb'}`);
      await new Promise((r) => setTimeout(r, 20));
      calls.push('answered');
      if (failCreate && req.volumeId === volumes[1]?.volumeId) throw new CinderError('POST snapshots', 503, null, 'cinder-volume is away');
      const made = await fake.createSnapshot(req);
      // cinder-volume takes the snapshot some time after the API answered
      if (takenAfterMs !== null) {
        setTimeout(() => {
          const snap = fake.snapshots.get(made.id);
          if (snap) snap.status = 'available';
          calls.push('taken');
        }, takenAfterMs);
      }
      return made;
    },
  };
  return { calls, fake, deps: { libvirt, dom, cinder, quiesce: { timeoutMs: 50 } } };
}

describe('snapshotVolumesAtOnePoint', () => {
  it('asks for every snapshot inside one freeze and thaws once Cinder has taken them all, not when the calls return', async () => {
    const { calls, fake, deps } = setup('ok');
    const out = await snapshotVolumesAtOnePoint(deps, { runId: 'r1', imageName: 'img', volumes, running: true });
    // side by side: both calls are sent before either answers, all inside the freeze
    expect(calls[0]).toBe('freeze');
    expect(calls.slice(1, 3).sort()).toEqual(['create vda', 'create vdb']);
    // Cinder's answer only queues a snapshot: the guest stays frozen until cinder-volume has taken both
    expect(calls.slice(3)).toEqual(['answered', 'answered', 'taken', 'taken', 'thaw']);
    expect(out.quiesce).toMatchObject({ quiesced: true, freezeWindowMs: expect.any(Number) });
    expect(out.quiesce.freezeWindowMs ?? -1).toBeGreaterThanOrEqual(out.callsMs - 5);
    expect([...fake.snapshots.values()].map((s) => s.status)).toEqual(['available', 'available']);
    expect(out.snapshots.map((s) => [s.device, s.created])).toEqual([['vda', true], ['vdb', true]]);
  });

  it("looks for the run's earlier snapshots before it freezes: the freeze holds the create calls only", async () => {
    const { calls, deps } = setup('ok');
    const list = deps.cinder.listSnapshots;
    const cinder = { ...deps.cinder, listSnapshots: (...args: Parameters<typeof list>) => (calls.push('list'), list(...args)) };
    await snapshotVolumesAtOnePoint({ ...deps, cinder }, { runId: 'r1', imageName: 'img', volumes, running: true });
    expect(calls.slice(0, 3)).toEqual(['list', 'list', 'freeze']);
    expect(calls.slice(3).every((c) => c !== 'list')).toBe(true);
    expect(calls.at(-1)).toBe('thaw');
  });

  it('thaws and fails for good when Cinder has not taken the snapshots by the deadline: they are not of one point in time', async () => {
    const { calls, deps } = setup('ok', false, null);
    const failed = await snapshotVolumesAtOnePoint({ ...deps, takenDeadlineMs: 150 }, { runId: 'r1', imageName: 'img', volumes, running: true }).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(SnapshotsNotTakenInFreeze);
    expect(failed).toMatchObject({ retryable: false, message: expect.stringMatching(/not of one point in time/) });
    expect(calls.at(-1)).toBe('thaw');
  });

  it('goes on crash-consistent when the agent cannot freeze, and says why', async () => {
    const { calls, deps } = setup('no-agent');
    const out = await snapshotVolumesAtOnePoint(deps, { runId: 'r1', imageName: 'img', volumes, running: true });
    expect(calls[0]).toBe('freeze');
    expect(calls).toContain('create vda');
    expect(out.quiesce).toMatchObject({ quiesced: false, freezeWindowMs: null, quiesceError: expect.stringMatching(/not connected/) });
  });

  it('asks Cinder for nothing when the image requires quiesce and the agent cannot freeze', async () => {
    const { calls, fake, deps } = setup('no-agent');
    const refused = snapshotVolumesAtOnePoint({ ...deps, quiesce: { timeoutMs: 50, requireQuiesce: true } }, { runId: 'r1', imageName: 'img', volumes, running: true });
    await expect(refused).rejects.toBeInstanceOf(QuiesceRequired);
    expect(calls).toEqual(['freeze', 'thaw']);
    expect(fake.snapshots.size).toBe(0);
  });

  it('does not freeze a guest that is not running', async () => {
    const { calls, deps } = setup('ok');
    const out = await snapshotVolumesAtOnePoint(deps, { runId: 'r1', imageName: 'img', volumes, running: false });
    expect(calls.filter((c) => c === 'freeze' || c === 'thaw')).toEqual([]);
    expect(out.quiesce).toEqual({ quiesced: false, freezeWindowMs: null });
  });

  it('thaws when a create call fails, and the retry reuses the snapshot already made', async () => {
    const { calls, fake, deps } = setup('ok', true);
    await expect(snapshotVolumesAtOnePoint(deps, { runId: 'r1', imageName: 'img', volumes, running: true })).rejects.toMatchObject({ status: 503 });
    expect(calls.at(-1)).toBe('thaw');
    expect(fake.snapshots.size).toBe(1);
    const retry = setup('ok');
    for (const [id, s] of fake.snapshots) retry.fake.snapshots.set(id, s);
    const out = await snapshotVolumesAtOnePoint(retry.deps, { runId: 'r1', imageName: 'img', volumes, running: true });
    expect(out.snapshots.map((s) => s.created)).toEqual([false, true]);
    expect(retry.fake.snapshots.size).toBe(2);
  });
});
