// The guest agent's error text is the guest's: libvirt folds the agent's `desc` into its error
// message verbatim. Here a libvirt peer speaking the real RPC protocol over a unix socket (our real
// client on the other end) answers freeze and thaw with what a hostile guest can make its agent
// say: 1 MiB of text with line breaks and ANSI escapes. What leaves withQuiescedGuest (the result's
// quiesceError, the log fields, a thaw failure) is bounded and has no control character.
import { GUEST_TEXT_MAX_CHARS, Libvirt, LibvirtError, Procedure, VIR_ERR_INTERNAL_ERROR, type Domain } from '../../../src/libvirt';
import { writeRemoteError } from '../../../src/libvirt/types';
import { withQuiescedGuest } from '../../../src/host/quiesce';
import { startFakeDaemon, type FakeDaemon } from '../libvirt/fake-daemon';

const GUEST_DESC = `\u001b]0;owned\u0007\u001b[2J\nforged log line {"level":"error"}\r\n${'A'.repeat(1024 * 1024)}`;
const AGENT_MESSAGE = `internal error: unable to execute QEMU agent command 'guest-fsfreeze-freeze': ${GUEST_DESC}`;
const CONTROL = /\p{Cc}/u;
const dom: Domain = { name: 'g', uuid: '11111111-2222-3333-4444-555555555555', id: 1 };

let daemon: FakeDaemon | undefined;
afterEach(async () => {
  await daemon?.close();
  daemon = undefined;
});

/** A libvirtd peer whose agent fails freeze and/or thaw with the guest's text. */
async function clientWhoseAgent(fails: { freeze: boolean; thaw: boolean }): Promise<Libvirt> {
  daemon = await startFakeDaemon((conn, p) => {
    const failing = (p.header.procedure === Procedure.DomainFSFreeze && fails.freeze) || (p.header.procedure === Procedure.DomainFSThaw && fails.thaw);
    if (failing) {
      conn.replyError(p.header, (w) => writeRemoteError(w, { code: VIR_ERR_INTERNAL_ERROR, domain: 10, message: AGENT_MESSAGE, level: 2, str1: GUEST_DESC, str2: null, str3: null, int1: 0, int2: 0 }));
    } else {
      conn.reply(p.header, (w) => w.int32(1));
    }
  });
  return Libvirt.connect('qemu:///system', { socketPath: daemon.socketPath, keepaliveIntervalMs: 0, callTimeoutMs: 5_000 });
}

function expectBounded(text: unknown): void {
  expect(typeof text).toBe('string');
  expect([...(text as string)].length).toBeLessThanOrEqual(GUEST_TEXT_MAX_CHARS + ' (libvirt error 1)'.length);
  expect(CONTROL.test(text as string)).toBe(false);
}

it('a freeze refused with the guest\'s text: quiesceError and the log carry it bounded, without control characters', async () => {
  const client = await clientWhoseAgent({ freeze: true, thaw: true });
  const logged: Record<string, unknown>[] = [];
  try {
    const { value, quiesce } = await withQuiescedGuest(client, dom, { timeoutMs: 2_000, log: (_m, fields) => logged.push(fields) }, async () => 'cut');
    expect(value).toBe('cut');
    expect(quiesce.quiesced).toBe(false);
    expectBounded(quiesce.quiesceError);
    expect(quiesce.quiesceError).toMatch(/^internal error: unable to execute QEMU agent command 'guest-fsfreeze-freeze': {2}\]0;owned \[2J forged log line .*A… \(libvirt error 1\)$/);
    expect(logged.length).toBeGreaterThan(0);
    for (const fields of logged) expectBounded(fields.error);
  } finally {
    await client.close();
  }
});

it('a thaw refused with the guest\'s text fails the cut with a bounded LibvirtError of the same code, no raw cause', async () => {
  const client = await clientWhoseAgent({ freeze: false, thaw: true });
  const logged: Record<string, unknown>[] = [];
  try {
    const err = await withQuiescedGuest(client, dom, { timeoutMs: 2_000, thawAttempts: 2, log: (_m, fields) => logged.push(fields) }, async () => 'cut').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtError);
    expect(err).toMatchObject({ code: VIR_ERR_INTERNAL_ERROR, retryable: true, str1: null });
    expect((err as Error).cause).toBeUndefined();
    expectBounded((err as Error).message);
    expect(String((err as Error).stack).length).toBeLessThan(4_096);
    for (const fields of logged) expectBounded(fields.error);
  } finally {
    await client.close();
  }
});
