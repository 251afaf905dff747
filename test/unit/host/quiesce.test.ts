// Quiesce never blocks a snapshot and never leaves a guest frozen: a stub libvirt client answers
// freeze and thaw the ways a real agent can (fine, not connected, hung, freeze landed but its answer lost).
import { LibvirtError, LibvirtTimeoutError, type Domain, type Libvirt } from '../../../src/libvirt';
import { withQuiescedGuest } from '../../../src/host/quiesce';

type Answer = 'ok' | 'no-agent' | 'timeout';

function stubClient(freeze: Answer, thaw: Answer[] = ['ok']) {
  const calls: string[] = [];
  let thaws = 0;
  const answer = async (a: Answer, what: string) => {
    calls.push(what);
    if (a === 'no-agent') {
      throw new LibvirtError({ code: 86, domain: 10, level: 2, message: 'Guest agent is not responding: QEMU guest agent is not connected', str1: null, str2: null, str3: null, int1: 0, int2: 0 });
    }
    if (a === 'timeout') throw new LibvirtTimeoutError(what, 50);
    return 1;
  };
  const client = {
    domainFSFreeze: (_d: Domain, _m: readonly string[], _f: number, opts?: { timeoutMs?: number }) => {
      expect(opts?.timeoutMs).toBe(50);
      return answer(freeze, 'freeze');
    },
    domainFSThaw: () => answer(thaw[Math.min(thaws++, thaw.length - 1)] ?? 'ok', 'thaw'),
  } as unknown as Libvirt;
  return { client, calls };
}

const dom = { name: 'g', uuid: '00000000-0000-0000-0000-000000000000', id: 1 } as Domain;

describe('withQuiescedGuest', () => {
  it('freezes around the cut only and reports the freeze window', async () => {
    const { client, calls } = stubClient('ok');
    const { value, quiesce } = await withQuiescedGuest(client, dom, { timeoutMs: 50 }, async () => {
      calls.push('cut');
      return 'copied';
    });
    expect(value).toBe('copied');
    expect(calls).toEqual(['freeze', 'cut', 'thaw']);
    expect(quiesce).toEqual({ quiesced: true, freezeWindowMs: expect.any(Number) });
  });

  it('no agent: cuts crash-consistent, says why, and still tries a thaw', async () => {
    const { client, calls } = stubClient('no-agent', ['no-agent']);
    const { quiesce } = await withQuiescedGuest(client, dom, { timeoutMs: 50 }, async () => void calls.push('cut'));
    expect(calls).toEqual(['freeze', 'thaw', 'cut']);
    expect(quiesce).toMatchObject({ quiesced: false, freezeWindowMs: null, quiesceError: expect.stringMatching(/not connected.*86/) });
  });

  it('a freeze that times out may have landed: a thaw is sent before the cut', async () => {
    const { client, calls } = stubClient('timeout', ['ok']);
    const { quiesce } = await withQuiescedGuest(client, dom, { timeoutMs: 50 }, async () => void calls.push('cut'));
    expect(calls).toEqual(['freeze', 'thaw', 'cut']);
    expect(quiesce).toMatchObject({ quiesced: false, quiesceError: expect.stringMatching(/no reply/) });
  });

  it('thaws even when the cut fails, retrying a thaw that fails', async () => {
    const { client, calls } = stubClient('ok', ['timeout', 'ok']);
    await expect(
      withQuiescedGuest(client, dom, { timeoutMs: 50 }, async () => {
        throw new Error('block job abort failed');
      }),
    ).rejects.toThrow(/block job abort failed/);
    expect(calls).toEqual(['freeze', 'thaw', 'thaw']);
  });

  it('a guest that cannot be thawed fails the step loudly rather than passing as quiesced', async () => {
    const { client } = stubClient('ok', ['timeout']);
    const logged: string[] = [];
    await expect(withQuiescedGuest(client, dom, { timeoutMs: 50, thawAttempts: 2, log: (m) => logged.push(m) }, async () => undefined)).rejects.toThrow(/no reply/);
    expect(logged).toEqual(['guest filesystems may still be frozen: thaw failed']);
  });
});
