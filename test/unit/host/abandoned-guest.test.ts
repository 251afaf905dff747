// The sweep's decision for the guest a closed cold run held: brought back only while it is as the
// run left it (saved: shut off with a save image; restarted: paused), in the power state the run
// found; anything else is left as found, and the markers go. A fake libvirt records what is done.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { POWER_STATE_PAUSED, POWER_STATE_RUNNING, POWER_STATE_SHUTDOWN, type PowerState } from '../../../src/contract';
import { returnAbandonedGuest } from '../../../src/host/abandoned-guest';
import { holdsGuest, namedDomain, writeGuestMarker } from '../../../src/host/guest-markers';
import { DomainState, LibvirtError, VIR_DOMAIN_START_PAUSED, VIR_ERR_NO_DOMAIN, type Domain, type Libvirt } from '../../../src/libvirt';

const DOM: Domain = { name: 'instance-00000002', uuid: '0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9', id: 3 };

/** One domain in a state; the calls that change it are recorded. */
class FakeHost {
  calls: string[] = [];
  constructor(
    public state: DomainState,
    public saved: boolean,
    public exists = true,
  ) {}

  client(): Libvirt {
    const lookup = async (): Promise<Domain> => {
      if (!this.exists) throw new LibvirtError({ code: VIR_ERR_NO_DOMAIN, domain: 10, message: 'Domain not found', level: 2, str1: null, str2: null, str3: null, int1: 0, int2: 0 });
      return DOM;
    };
    const fake = {
      domainLookupByUUID: lookup,
      domainLookupByName: lookup,
      domainGetState: async () => ({ state: this.state, reason: 0 }),
      domainHasManagedSaveImage: async () => this.saved,
      domainCreateWithFlags: async (dom: Domain, flags: number) => {
        this.calls.push(flags === VIR_DOMAIN_START_PAUSED ? 'start paused' : 'start');
        this.state = flags === VIR_DOMAIN_START_PAUSED ? DomainState.Paused : DomainState.Running;
        this.saved = false;
        return dom;
      },
      domainResume: async () => {
        this.calls.push('resume');
        this.state = DomainState.Running;
      },
      domainGetXMLDesc: async () => `<domain type='kvm'><devices><emulator>/usr/bin/qemu-system-x86_64</emulator></devices></domain>`,
    };
    return fake as unknown as Libvirt;
  }
}

describe('returnAbandonedGuest', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'abandoned-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const markSaved = (powerState: PowerState) => writeGuestMarker(dir, 'saved', { ...namedDomain(DOM), powerState });

  it('starts a guest the run managed-saved from its save, running or paused as the run found it', async () => {
    for (const [prior, started] of [
      [POWER_STATE_RUNNING, 'start'],
      [POWER_STATE_PAUSED, 'start paused'],
    ] as const) {
      const host = new FakeHost(DomainState.Shutoff, true);
      await markSaved(prior);
      expect(await returnAbandonedGuest(host.client(), dir)).toEqual({ domainName: DOM.name, outcome: 'started from its save' });
      expect(host.calls).toEqual([started]);
      expect(holdsGuest(dir)).toBe(false);
    }
  });

  it('leaves a guest that is no longer as the run left it, and forgets the marker', async () => {
    const cases: [string, FakeHost][] = [
      ['started meanwhile', new FakeHost(DomainState.Running, false)],
      ['shut off without a save image (destroyed, its save discarded)', new FakeHost(DomainState.Shutoff, false)],
      ['paused by someone, not restarted by the run', new FakeHost(DomainState.Paused, false)],
    ];
    for (const [, host] of cases) {
      await markSaved(POWER_STATE_RUNNING);
      expect(await returnAbandonedGuest(host.client(), dir)).toEqual({ domainName: DOM.name, outcome: 'left as found' });
      expect(host.calls).toEqual([]);
      expect(holdsGuest(dir)).toBe(false);
    }
  });

  it('does not start a guest the run found shut off', async () => {
    const host = new FakeHost(DomainState.Shutoff, true);
    await markSaved(POWER_STATE_SHUTDOWN);
    expect(await returnAbandonedGuest(host.client(), dir)).toEqual({ domainName: DOM.name, outcome: 'left as found' });
    expect(host.calls).toEqual([]);
  });

  it('resumes a guest the run restarted paused, with or without the saved marker beside it', async () => {
    for (const alsoSaved of [false, true]) {
      const host = new FakeHost(DomainState.Paused, false);
      await writeGuestMarker(dir, 'restartedPaused', namedDomain(DOM));
      if (alsoSaved) await markSaved(POWER_STATE_RUNNING);
      expect(await returnAbandonedGuest(host.client(), dir)).toEqual({ domainName: DOM.name, outcome: 'resumed' });
      expect(host.calls).toEqual(['resume']);
      expect(holdsGuest(dir)).toBe(false);
    }
  });

  it('starts a guest saved again after a refused restart (the restart marker left, the saved one too)', async () => {
    const host = new FakeHost(DomainState.Shutoff, true);
    await writeGuestMarker(dir, 'restartedPaused', namedDomain(DOM));
    await markSaved(POWER_STATE_RUNNING);
    expect(await returnAbandonedGuest(host.client(), dir)).toEqual({ domainName: DOM.name, outcome: 'started from its save' });
    expect(host.calls).toEqual(['start']);
  });

  it('does nothing without a marker (a guest saved by hand), and drops the markers of a deleted domain', async () => {
    const byHand = new FakeHost(DomainState.Shutoff, true);
    expect(await returnAbandonedGuest(byHand.client(), dir)).toBeNull();
    expect(byHand.calls).toEqual([]);

    await markSaved(POWER_STATE_RUNNING);
    expect(await returnAbandonedGuest(new FakeHost(DomainState.Shutoff, true, false).client(), dir)).toBeNull();
    expect(holdsGuest(dir)).toBe(false);
  });
});
