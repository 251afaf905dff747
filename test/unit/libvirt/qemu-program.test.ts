// The libvirt-qemu program on the same connection as REMOTE: calls name their program, replies are
// matched by serial and must come back under the program of the call.
import { encodePacket, MessageStatus, MessageType, type Header } from '../../../src/libvirt/frame';
import {
  Libvirt,
  LibvirtError,
  LibvirtProtocolError,
  LibvirtTimeoutError,
  LibvirtUsageError,
  Procedure,
  QEMU_PROGRAM,
  QemuProcedure,
  REMOTE_PROGRAM,
  VIR_DOMAIN_AGENT_RESPONSE_TIMEOUT_BLOCK,
  VIR_DOMAIN_QEMU_AGENT_COMMAND_BLOCK,
  VIR_DOMAIN_QEMU_AGENT_COMMAND_DEFAULT,
  VIR_DOMAIN_QEMU_AGENT_COMMAND_NOWAIT,
  VIR_ERR_AGENT_UNRESPONSIVE,
  type Domain,
} from '../../../src/libvirt';
import { agentCallOptions } from '../../../src/libvirt/agent-call';
import { readDomain, writeRemoteError } from '../../../src/libvirt/types';
import { XdrReader } from '../../../src/libvirt/xdr';
import { startFakeDaemon, type CallHandler, type FakeDaemon } from './fake-daemon';

const DOM: Domain = { name: 'guest-1', uuid: '11111111-2222-3333-4444-555555555555', id: 3 };
let daemon: FakeDaemon | null = null;

async function connectTo(onCall: CallHandler, callTimeoutMs = 5_000): Promise<Libvirt> {
  daemon = await startFakeDaemon(onCall);
  return Libvirt.connect('qemu:///system', { socketPath: daemon.socketPath, keepaliveIntervalMs: 0, callTimeoutMs });
}

afterEach(async () => {
  await daemon?.close();
  daemon = null;
});

function decodeAgentArgs(payload: Buffer): { dom: Domain; cmd: string; timeout: number; flags: number } {
  const r = new XdrReader(payload);
  const args = { dom: readDomain(r), cmd: r.string(4194304), timeout: r.int32(), flags: r.uint32() };
  r.end();
  return args;
}

const isAgentCall = (h: Header): boolean => h.program === QEMU_PROGRAM && h.procedure === QemuProcedure.DomainAgentCommand;

describe('libvirt-qemu program: virDomainQemuAgentCommand', () => {
  it('sends QEMU_PROC_DOMAIN_AGENT_COMMAND under program 0x20008087 v1 and decodes the remote_string result', async () => {
    const seen: Array<{ header: Header; args: ReturnType<typeof decodeAgentArgs> }> = [];
    const client = await connectTo((conn, p) => {
      seen.push({ header: p.header, args: decodeAgentArgs(p.payload) });
      conn.reply(p.header, (w) => w.bool(true).string('{"return":{}}', 4194304));
    });
    const reply = await client.domainQemuAgentCommand(DOM, '{"execute":"guest-ping"}', VIR_DOMAIN_QEMU_AGENT_COMMAND_DEFAULT, 0);
    expect(reply).toBe('{"return":{}}');
    expect(seen).toHaveLength(1);
    expect(seen[0]?.header).toMatchObject({ program: 0x20008087, version: 1, procedure: 3, type: MessageType.Call });
    expect(seen[0]?.args).toEqual({ dom: DOM, cmd: '{"execute":"guest-ping"}', timeout: -1, flags: 0 });
    await client.close();
  });

  it('returns null when libvirt has no reply to give (NOWAIT)', async () => {
    const client = await connectTo((conn, p) => conn.reply(p.header, (w) => w.bool(false)));
    expect(await client.domainQemuAgentCommand(DOM, '{"execute":"guest-ping"}', VIR_DOMAIN_QEMU_AGENT_COMMAND_NOWAIT)).toBeNull();
    await client.close();
  });

  it('keeps REMOTE and QEMU calls with the same procedure number apart, even when replies come back reversed', async () => {
    const held: Array<() => void> = [];
    const client = await connectTo((conn, p) => {
      if (p.header.program === REMOTE_PROGRAM) held.push(() => conn.reply(p.header, (w) => w.string('QEMU', 100)));
      else held.push(() => conn.reply(p.header, (w) => w.bool(true).string('{"return":{"agent":true}}', 1000)));
      if (held.length === 2) for (const send of held.reverse()) send();
    });
    expect(Procedure.ConnectGetType).toBe(QemuProcedure.DomainAgentCommand); // the collision under test
    const [type, agent] = await Promise.all([client.connectGetType(), client.domainQemuAgentCommand(DOM, '{}', 5)]);
    expect(type).toBe('QEMU');
    expect(agent).toBe('{"return":{"agent":true}}');
    await client.close();
  });

  it('fails with LibvirtProtocolError when the reply to a QEMU call carries the REMOTE program', async () => {
    const client = await connectTo((conn, p) =>
      conn.raw(encodePacket({ ...p.header, program: REMOTE_PROGRAM, type: MessageType.Reply, status: MessageStatus.Ok }, (w) => w.bool(false))),
    );
    const err = await client.domainQemuAgentCommand(DOM, '{}', 5).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtProtocolError);
    expect((err as Error).message).toMatch(/reply for serial \d+ comes from program 0x20008086 version 1, but the call went to 0x20008087 version 1/);
    expect(client.closed).toBe(true);
  });

  it('fails with LibvirtProtocolError when the reply to a REMOTE call carries the QEMU program', async () => {
    const client = await connectTo((conn, p) =>
      conn.raw(encodePacket({ ...p.header, program: QEMU_PROGRAM, type: MessageType.Reply, status: MessageStatus.Ok }, (w) => w.string('h', 10))),
    );
    const err = await client.connectGetHostname().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtProtocolError);
    expect((err as Error).message).toMatch(/comes from program 0x20008087 version 1, but the call went to 0x20008086 version 1/);
  });

  it('rejects a QEMU-program packet with a version this client does not speak', async () => {
    const client = await connectTo((conn, p) =>
      conn.raw(encodePacket({ ...p.header, version: 2, type: MessageType.Reply, status: MessageStatus.Ok }, (w) => w.bool(false))),
    );
    const err = await client.domainQemuAgentCommand(DOM, '{}', 5).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtProtocolError);
    expect((err as Error).message).toMatch(/unexpected program 0x20008087 version 2/);
  });

  it('turns an error reply into a LibvirtError named after the QEMU procedure', async () => {
    const client = await connectTo((conn, p) =>
      conn.replyError(p.header, (w) =>
        writeRemoteError(w, {
          code: VIR_ERR_AGENT_UNRESPONSIVE,
          domain: 10,
          message: 'Guest agent is not responding: QEMU guest agent is not connected',
          level: 2,
          str1: null,
          str2: null,
          str3: null,
          int1: 0,
          int2: 0,
        }),
      ),
    );
    const err = await client.domainQemuAgentCommand(DOM, '{"execute":"guest-ping"}', 2).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtError);
    expect(err).toMatchObject({ code: VIR_ERR_AGENT_UNRESPONSIVE, procedure: 'QemuDomainAgentCommand' });
    expect(client.closed).toBe(false);
    await client.close();
  });

  it('names the QEMU procedure when the call times out, and an explicit deadline wins over the derived one', async () => {
    const client = await connectTo(() => undefined);
    const err = await client.domainQemuAgentCommand(DOM, '{}', 30, 0, { timeoutMs: 100 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtTimeoutError);
    expect(err).toMatchObject({ procedure: 'QemuDomainAgentCommand', timeoutMs: 100 });
    await client.close();
  });

  it('fails only that call when the result string declares more than REMOTE_STRING_MAX', async () => {
    let n = 0;
    const client = await connectTo((conn, p) => {
      n++;
      if (n === 1) conn.reply(p.header, (w) => w.bool(true).uint32(0x7fffffff));
      else conn.reply(p.header, (w) => w.bool(true).string('{"return":{}}', 100));
    });
    await expect(client.domainQemuAgentCommand(DOM, '{}', 5)).rejects.toThrow(/string length 2147483647 exceeds limit 4194304/);
    expect(await client.domainQemuAgentCommand(DOM, '{}', 5)).toBe('{"return":{}}');
    await client.close();
  });

  it('rejects timeouts libvirt would refuse before sending anything', async () => {
    let calls = 0;
    const client = await connectTo(() => calls++);
    await expect(client.domainQemuAgentCommand(DOM, '{}', -3)).rejects.toBeInstanceOf(LibvirtUsageError);
    await expect(client.domainQemuAgentCommand(DOM, '{}', 1.5)).rejects.toBeInstanceOf(LibvirtUsageError);
    await expect(client.domainAgentSetResponseTimeout(DOM, -7)).rejects.toBeInstanceOf(LibvirtUsageError);
    expect(calls).toBe(0);
    await client.close();
  });

  it('derives an RPC deadline that outlasts libvirt\'s own agent wait', () => {
    expect(agentCallOptions(10)).toEqual({ timeoutMs: 55_000 });
    expect(agentCallOptions(VIR_DOMAIN_QEMU_AGENT_COMMAND_DEFAULT)).toEqual({ timeoutMs: 50_000 });
    expect(agentCallOptions(VIR_DOMAIN_QEMU_AGENT_COMMAND_NOWAIT)).toEqual({ timeoutMs: 45_000 });
    expect(agentCallOptions(VIR_DOMAIN_QEMU_AGENT_COMMAND_BLOCK)).toBeUndefined();
  });
});

describe('virDomainAgentSetResponseTimeout', () => {
  it('sends REMOTE_PROC_DOMAIN_AGENT_SET_RESPONSE_TIMEOUT (420) with dom, timeout and flags, and reads the int result', async () => {
    const seen: Array<{ header: Header; dom: Domain; timeout: number; flags: number }> = [];
    const client = await connectTo((conn, p) => {
      const r = new XdrReader(p.payload);
      seen.push({ header: p.header, dom: readDomain(r), timeout: r.int32(), flags: r.uint32() });
      r.end();
      conn.reply(p.header, (w) => w.int32(0));
    });
    await client.domainAgentSetResponseTimeout(DOM, 7);
    await client.domainAgentSetResponseTimeout(DOM, VIR_DOMAIN_AGENT_RESPONSE_TIMEOUT_BLOCK, 0);
    expect(seen.map((s) => [s.header.program, s.header.procedure, s.timeout, s.flags])).toEqual([
      [REMOTE_PROGRAM, 420, 7, 0],
      [REMOTE_PROGRAM, 420, -2, 0],
    ]);
    expect(seen[0]?.dom).toEqual(DOM);
    expect(seen.every((s) => !isAgentCall(s.header))).toBe(true);
    await client.close();
  });
});
