// The guest-agent helpers' JSON handling, against a stubbed agent-command call (no libvirt, no guest).
import {
  LibvirtConnectionError,
  LibvirtError,
  LibvirtTimeoutError,
  LibvirtUsageError,
  VIR_ERR_AGENT_UNRESPONSIVE,
  VIR_ERR_ARGUMENT_UNSUPPORTED,
  VIR_ERR_INTERNAL_ERROR,
  VIR_ERR_OPERATION_INVALID,
  type CallOptions,
  type Domain,
} from '../../../../src/libvirt';
import {
  agentPing,
  guestExec,
  guestFileRead,
  GuestAgentError,
  GuestAgentProtocolError,
  GuestAgentUnavailable,
  GuestExecFailed,
  GuestOutputTooLarge,
  waitForAgent,
  type AgentCommandChannel,
} from '../../../../src/testing/guest/guest-agent';

const DOM: Domain = { name: 'guest-1', uuid: '11111111-2222-3333-4444-555555555555', id: 3 };

interface AgentCommand {
  execute: string;
  arguments?: Record<string, unknown>;
}
type Answer = string | null | Error;

class StubAgent implements AgentCommandChannel {
  readonly calls: Array<AgentCommand & { timeoutS: number; rpcTimeoutMs?: number }> = [];
  constructor(private readonly answer: (cmd: AgentCommand, n: number) => Answer) {}

  async domainQemuAgentCommand(_dom: Domain, command: string, timeoutSeconds: number, _flags?: number, opts?: CallOptions): Promise<string | null> {
    const cmd = JSON.parse(command) as AgentCommand;
    this.calls.push({ ...cmd, timeoutS: timeoutSeconds, rpcTimeoutMs: opts?.timeoutMs });
    const a = this.answer(cmd, this.calls.length);
    if (a instanceof Error) throw a;
    return a;
  }
}

function libvirtError(code: number, message: string): LibvirtError {
  return new LibvirtError({ code, domain: 10, message, level: 2, str1: null, str2: null, str3: null, int1: 0, int2: 0 }, 'QemuDomainAgentCommand');
}

const ok = (value: unknown): string => JSON.stringify({ return: value });
const b64 = (s: string): string => Buffer.from(s).toString('base64');

describe('agentPing', () => {
  it('sends guest-ping with the given agent timeout and an RPC deadline that allows for guest-sync', async () => {
    const agent = new StubAgent(() => ok({}));
    expect(await agentPing(agent, DOM, 3)).toBe(true);
    expect(agent.calls).toEqual([{ execute: 'guest-ping', timeoutS: 3, rpcTimeoutMs: 15_000 }]);
  });

  it.each([
    ['agent not connected', libvirtError(VIR_ERR_AGENT_UNRESPONSIVE, 'Guest agent is not responding: QEMU guest agent is not connected')],
    ['domain not running', libvirtError(VIR_ERR_OPERATION_INVALID, 'Requested operation is not valid: domain is not running')],
    ['our RPC deadline', new LibvirtTimeoutError('QemuDomainAgentCommand', 15_000)],
  ])('answers false when the agent is not ready yet (%s)', async (_why, err) => {
    expect(await agentPing(new StubAgent(() => err), DOM, 1)).toBe(false);
  });

  it('rethrows what waiting cannot fix: no agent channel configured, a lost connection', async () => {
    const notConfigured = libvirtError(VIR_ERR_ARGUMENT_UNSUPPORTED, 'argument unsupported: QEMU guest agent is not configured');
    await expect(agentPing(new StubAgent(() => notConfigured), DOM, 1)).rejects.toBe(notConfigured);
    const lost = new LibvirtConnectionError('connection lost');
    await expect(agentPing(new StubAgent(() => lost), DOM, 1)).rejects.toBe(lost);
  });

  it('rejects a timeout that is not a positive number of seconds', async () => {
    await expect(agentPing(new StubAgent(() => ok({})), DOM, 0)).rejects.toBeInstanceOf(LibvirtUsageError);
  });
});

describe('waitForAgent', () => {
  it('polls until the agent answers', async () => {
    const notYet = libvirtError(VIR_ERR_AGENT_UNRESPONSIVE, 'Guest agent is not responding: Guest agent not available for now');
    const agent = new StubAgent((_c, n) => (n < 3 ? notYet : ok({})));
    const r = await waitForAgent(agent, DOM, { timeoutMs: 5_000, pollIntervalMs: 5, pingTimeoutS: 2 });
    expect(r.attempts).toBe(3);
    expect(agent.calls.every((c) => c.execute === 'guest-ping' && c.timeoutS === 2)).toBe(true);
  });

  it('gives up with GuestAgentUnavailable carrying the last answer', async () => {
    const notYet = libvirtError(VIR_ERR_AGENT_UNRESPONSIVE, 'QEMU guest agent is not connected');
    const err = await waitForAgent(new StubAgent(() => notYet), DOM, { timeoutMs: 60, pollIntervalMs: 10 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GuestAgentUnavailable);
    expect(err).toMatchObject({ domain: 'guest-1', timeoutMs: 60, cause: notYet });
    expect((err as Error).message).toMatch(/did not answer within 60 ms \(last answer: QEMU guest agent is not connected\)/);
  });

  it('rejects unknown options', async () => {
    await expect(waitForAgent(new StubAgent(() => ok({})), DOM, { timeoutMs: 10, bogus: 1 } as never)).rejects.toBeInstanceOf(LibvirtUsageError);
  });
});

describe('guestExec', () => {
  it('runs argv with captured output, polls guest-exec-status until exited, and decodes the output', async () => {
    const agent = new StubAgent((cmd, n) => {
      if (cmd.execute === 'guest-exec') return ok({ pid: 42 });
      if (n < 4) return ok({ exited: false });
      return ok({ exited: true, exitcode: 3, 'out-data': b64('hello\n'), 'err-data': b64('warn: ü') });
    });
    const r = await guestExec(agent, DOM, '/bin/sh', ['-c', 'echo hello; exit 3'], { timeoutMs: 5_000, input: 'stdin text', pollIntervalMs: 1 });
    expect(r).toEqual({ exitCode: 3, stdout: 'hello\n', stderr: 'warn: ü' });
    expect(agent.calls[0]).toMatchObject({
      execute: 'guest-exec',
      arguments: { path: '/bin/sh', arg: ['-c', 'echo hello; exit 3'], 'capture-output': true, 'input-data': b64('stdin text') },
    });
    expect(agent.calls.slice(1).map((c) => [c.execute, c.arguments])).toEqual([
      ['guest-exec-status', { pid: 42 }],
      ['guest-exec-status', { pid: 42 }],
      ['guest-exec-status', { pid: 42 }],
    ]);
  });

  it('returns empty output when the agent sends no out-data/err-data', async () => {
    const agent = new StubAgent((cmd) => (cmd.execute === 'guest-exec' ? ok({ pid: 1 }) : ok({ exited: true, exitcode: 0 })));
    expect(await guestExec(agent, DOM, '/bin/true', [], { timeoutMs: 1_000 })).toEqual({ exitCode: 0, stdout: '', stderr: '' });
    expect(agent.calls[0]?.arguments).not.toHaveProperty('input-data');
  });

  it('turns an {"error": ...} reply into GuestAgentError with the QMP class', async () => {
    const agent = new StubAgent(() => JSON.stringify({ error: { class: 'GenericError', desc: 'Guest agent command failed' } }));
    const err = await guestExec(agent, DOM, '/bin/true', [], { timeoutMs: 1_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GuestAgentError);
    expect(err).toMatchObject({ command: 'guest-exec', errorClass: 'GenericError', description: 'Guest agent command failed' });
  });

  it('bounds the guest\'s error class and text and strips their control characters', async () => {
    const agent = new StubAgent(() => JSON.stringify({ error: { class: 'Generic\u001b[2JError', desc: `line 1\r\nline 2\u009b${'x'.repeat(100_000)}` } }));
    const err = await guestExec(agent, DOM, '/bin/true', [], { timeoutMs: 1_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GuestAgentError);
    const { errorClass, description, message } = err as GuestAgentError;
    expect(errorClass).toBe('Generic [2JError');
    expect(description).toMatch(/^line 1 line 2 x+…$/);
    expect([...description].length).toBe(256);
    expect(/\p{Cc}/u.test(message)).toBe(false);
    expect(message.length).toBeLessThan(600);
  });

  it('turns libvirt\'s folded agent refusal into GuestAgentError, keeping the LibvirtError as cause', async () => {
    const refusal = libvirtError(
      VIR_ERR_INTERNAL_ERROR,
      "internal error: unable to execute QEMU agent command 'guest-exec': Failed to execute child process “/nope” (No such file or directory)",
    );
    const err = await guestExec(new StubAgent(() => refusal), DOM, '/nope', [], { timeoutMs: 1_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GuestAgentError);
    expect(err).toMatchObject({ command: 'guest-exec', errorClass: null, cause: refusal });
    expect((err as GuestAgentError).description).toMatch(/No such file or directory/);
  });

  it('fails with GuestExecFailed(timeout) when the process never exits', async () => {
    const agent = new StubAgent((cmd) => (cmd.execute === 'guest-exec' ? ok({ pid: 9 }) : ok({ exited: false })));
    const err = await guestExec(agent, DOM, '/bin/sleep', ['100'], { timeoutMs: 80, pollIntervalMs: 5 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GuestExecFailed);
    expect(err).toMatchObject({ reason: 'timeout', pid: 9, path: '/bin/sleep' });
  });

  it.each([
    [{ exited: true, signal: 9 }, 'signal'],
    [{ exited: true, exitcode: 0, 'out-data': b64('x'), 'out-truncated': true }, 'output-truncated'],
  ])('fails with GuestExecFailed for %j', async (status, reason) => {
    const agent = new StubAgent((cmd) => (cmd.execute === 'guest-exec' ? ok({ pid: 5 }) : ok(status)));
    await expect(guestExec(agent, DOM, '/bin/x', [], { timeoutMs: 1_000 })).rejects.toMatchObject({ name: 'GuestExecFailed', reason });
  });

  it('refuses output over the cap before decoding it', async () => {
    const agent = new StubAgent((cmd) => (cmd.execute === 'guest-exec' ? ok({ pid: 5 }) : ok({ exited: true, exitcode: 0, 'out-data': b64('0123456789') })));
    const err = await guestExec(agent, DOM, '/bin/cat', [], { timeoutMs: 1_000, maxOutputBytes: 4 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GuestOutputTooLarge);
    expect(err).toMatchObject({ limitBytes: 4 });
  });

  it.each([
    ['not JSON', 'nope{', /not JSON/],
    ['no reply at all', null, /no reply/],
    ['a pid of the wrong type', ok({ pid: '42' }), /return\.pid/],
    ['neither return nor error', JSON.stringify({ id: 1 }), /return/],
  ])('rejects %s from guest-exec as GuestAgentProtocolError', async (_why, answer, message) => {
    const err = await guestExec(new StubAgent(() => answer), DOM, '/bin/true', [], { timeoutMs: 1_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GuestAgentProtocolError);
    expect((err as Error).message).toMatch(message);
  });

  it('rejects corrupted base64 output instead of decoding it leniently', async () => {
    const agent = new StubAgent((cmd) => (cmd.execute === 'guest-exec' ? ok({ pid: 5 }) : ok({ exited: true, exitcode: 0, 'out-data': 'aGVsbG8@!' })));
    await expect(guestExec(agent, DOM, '/bin/true', [], { timeoutMs: 1_000 })).rejects.toThrow(/out-data: not base64/);
  });

  it('rejects bad arguments before calling the agent', async () => {
    const agent = new StubAgent(() => ok({ pid: 1 }));
    await expect(guestExec(agent, DOM, '', [], { timeoutMs: 1_000 })).rejects.toBeInstanceOf(LibvirtUsageError);
    await expect(guestExec(agent, DOM, '/bin/true', [], { timeoutMs: 0 })).rejects.toBeInstanceOf(LibvirtUsageError);
    await expect(guestExec(agent, DOM, '/bin/cat', [], { timeoutMs: 1_000, input: Buffer.alloc(3 * 1024 * 1024) })).rejects.toThrow(/input of 3145728 bytes/);
    expect(agent.calls).toHaveLength(0);
  });
});

describe('guestFileRead', () => {
  it('opens, reads chunks until eof, closes, and returns the bytes', async () => {
    const chunks = ['abc', 'def'];
    const agent = new StubAgent((cmd) => {
      if (cmd.execute === 'guest-file-open') return ok(7);
      if (cmd.execute === 'guest-file-read') {
        const data = chunks.shift() ?? '';
        return ok({ count: data.length, 'buf-b64': b64(data), eof: chunks.length === 0 });
      }
      return ok({});
    });
    expect((await guestFileRead(agent, DOM, '/etc/hostname')).toString()).toBe('abcdef');
    expect(agent.calls.map((c) => c.execute)).toEqual(['guest-file-open', 'guest-file-read', 'guest-file-read', 'guest-file-close']);
    expect(agent.calls[0]?.arguments).toEqual({ path: '/etc/hostname', mode: 'r' });
    expect(agent.calls[3]?.arguments).toEqual({ handle: 7 });
  });

  it('stops one byte past the cap with GuestOutputTooLarge, and still closes the handle', async () => {
    const agent = new StubAgent((cmd) => {
      if (cmd.execute === 'guest-file-open') return ok(3);
      if (cmd.execute === 'guest-file-read') return ok({ count: 5, 'buf-b64': b64('12345'), eof: false });
      return ok({});
    });
    const err = await guestFileRead(agent, DOM, '/big', { maxBytes: 4 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GuestOutputTooLarge);
    expect(agent.calls.find((c) => c.execute === 'guest-file-read')?.arguments).toEqual({ handle: 3, count: 5 });
    expect(agent.calls.at(-1)?.execute).toBe('guest-file-close');
  });

  it('rejects a chunk whose count disagrees with its data', async () => {
    const agent = new StubAgent((cmd) => {
      if (cmd.execute === 'guest-file-open') return ok(3);
      if (cmd.execute === 'guest-file-read') return ok({ count: 2, 'buf-b64': b64('abc'), eof: true });
      return ok({});
    });
    await expect(guestFileRead(agent, DOM, '/f')).rejects.toBeInstanceOf(GuestAgentProtocolError);
  });
});
