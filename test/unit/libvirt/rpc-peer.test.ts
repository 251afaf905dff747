// Lost, silent and hostile peers: every call must settle with a typed error, never hang.
import { encodePacket, MessageStatus, MessageType } from '../../../src/libvirt/frame';
import {
  Libvirt,
  LibvirtConnectionError,
  LibvirtError,
  LibvirtProtocolError,
  LibvirtTimeoutError,
  LibvirtUsageError,
  Procedure,
  REMOTE_PROGRAM,
  VIR_ERR_NO_DOMAIN,
} from '../../../src/libvirt';
import { KEEPALIVE_PROGRAM, KeepaliveProcedure } from '../../../src/libvirt/protocol';
import { writeDomain, writeRemoteError } from '../../../src/libvirt/types';
import { XdrReader } from '../../../src/libvirt/xdr';
import { startFakeDaemon, type CallHandler, type FakeDaemon } from './fake-daemon';

const UUID = '11111111-2222-3333-4444-555555555555';
let daemon: FakeDaemon | null = null;

async function connectTo(onCall: CallHandler, opts: { keepalive?: boolean; keepaliveIntervalMs?: number; keepaliveCount?: number; callTimeoutMs?: number } = {}): Promise<Libvirt> {
  daemon = await startFakeDaemon(onCall, { keepalive: opts.keepalive });
  return Libvirt.connect('qemu:///system', {
    socketPath: daemon.socketPath,
    keepaliveIntervalMs: opts.keepaliveIntervalMs ?? 0,
    keepaliveCount: opts.keepaliveCount ?? 5,
    callTimeoutMs: opts.callTimeoutMs ?? 5_000,
  });
}

afterEach(async () => {
  await daemon?.close();
  daemon = null;
});

function lengthWord(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

describe('rpc against a fake peer', () => {
  it('multiplexes concurrent calls by serial even when replies come back in reverse order', async () => {
    const held: Array<() => void> = [];
    const client = await connectTo((conn, p) => {
      const name = new XdrReader(p.payload).string(1024);
      held.push(() => conn.reply(p.header, (w) => writeDomain(w, { name, uuid: UUID, id: 7 })));
      if (held.length === 50) for (const send of held.reverse()) send();
    });
    const names = Array.from({ length: 50 }, (_, i) => `dom-${i}`);
    const doms = await Promise.all(names.map((n) => client.domainLookupByName(n)));
    expect(doms.map((d) => d.name)).toEqual(names);
    expect(doms[0]).toEqual({ name: 'dom-0', uuid: UUID, id: 7 });
    await client.close();
  });

  it('turns a remote_error reply into a LibvirtError with code, domain, level and message', async () => {
    const client = await connectTo((conn, p) =>
      conn.replyError(p.header, (w) =>
        writeRemoteError(w, { code: VIR_ERR_NO_DOMAIN, domain: 10, message: "Domain not found: 'x'", level: 2, str1: null, str2: null, str3: null, int1: 0, int2: 0 }),
      ),
    );
    const err = await client.domainLookupByName('x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtError);
    expect(err).toMatchObject({ code: VIR_ERR_NO_DOMAIN, domain: 10, level: 2, message: "Domain not found: 'x'", retryable: false });
    await client.close();
  });

  it('fails the in-flight call with a retryable LibvirtConnectionError when the peer closes mid-call', async () => {
    const client = await connectTo((conn) => conn.socket.destroy());
    const err = await client.connectGetHostname().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtConnectionError);
    expect((err as LibvirtConnectionError).retryable).toBe(true);
    expect(client.closed).toBe(true);
    const next = await client.connectGetHostname().catch((e: unknown) => e);
    expect(next).toBeInstanceOf(LibvirtConnectionError);
    expect((next as Error).message).toMatch(/is closed/);
  });

  it('reports a frame cut off by EOF as a connection loss mid-frame', async () => {
    const client = await connectTo((conn) => {
      conn.raw(Buffer.concat([lengthWord(100), Buffer.alloc(30)]));
      conn.socket.end();
    });
    const err = await client.connectGetHostname().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtConnectionError);
    expect((err as Error).message).toMatch(/closed mid-frame with 34 bytes of a truncated packet/);
  });

  it('times out a call the peer never answers with LibvirtTimeoutError, and keeps the connection usable', async () => {
    let calls = 0;
    const client = await connectTo(
      (conn, p) => {
        calls++;
        if (calls > 1) conn.reply(p.header, (w) => w.string('host-b', 100));
      },
      { callTimeoutMs: 150 },
    );
    const started = Date.now();
    const err = await client.connectGetHostname().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtTimeoutError);
    expect(err).toMatchObject({ procedure: 'ConnectGetHostname', timeoutMs: 150, retryable: true });
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(await client.connectGetHostname()).toBe('host-b');
    expect(await client.connectGetHostname({ timeoutMs: 1000 })).toBe('host-b');
    await client.close();
  });

  it('declares a silent peer dead through keepalive before the call deadline', async () => {
    const client = await connectTo(() => undefined, { keepalive: true, keepaliveIntervalMs: 40, keepaliveCount: 3, callTimeoutMs: 60_000 });
    const started = Date.now();
    const err = await client.connectGetHostname().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtConnectionError);
    expect((err as Error).message).toMatch(/keepalive timed out/);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(daemon?.connections[0]?.keepalives).toContain(KeepaliveProcedure.Ping);
  });

  it('answers the daemon\'s keepalive PING with a PONG', async () => {
    const client = await connectTo((conn, p) => {
      conn.raw(encodePacket({ program: KEEPALIVE_PROGRAM, version: 1, procedure: KeepaliveProcedure.Ping, type: MessageType.Message, serial: 0, status: MessageStatus.Ok }));
      setTimeout(() => conn.reply(p.header, (w) => w.string('h', 10)), 50);
    });
    expect(await client.connectGetHostname()).toBe('h');
    expect(daemon?.connections[0]?.keepalives).toEqual([KeepaliveProcedure.Pong]);
    await client.close();
  });

  it('cannot connect to a socket nobody listens on: LibvirtConnectionError', async () => {
    const err = await Libvirt.connect('qemu:///system', { socketPath: '/nonexistent/dir/libvirt-sock' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtConnectionError);
    expect((err as Error).message).toMatch(/ENOENT/);
  });

  it('rejects invalid connect options at the boundary', async () => {
    await expect(Libvirt.connect('qemu:///system', { callTimeoutMs: -1 })).rejects.toBeInstanceOf(LibvirtUsageError);
    await expect(Libvirt.connect('qemu:///system', { bogus: 1 } as never)).rejects.toThrow(/Unrecognized key/);
  });
});

describe('rpc against a hostile peer', () => {
  const header = (serial: number) => ({ program: REMOTE_PROGRAM, version: 1, procedure: Procedure.ConnectGetHostname, type: MessageType.Reply, serial, status: MessageStatus.Ok });

  async function hostile(send: (serial: number, raw: (b: Buffer) => void) => void): Promise<unknown> {
    const client = await connectTo((conn, p) => send(p.header.serial, (b) => conn.raw(b)));
    const err = await client.connectGetHostname().catch((e: unknown) => e);
    expect(client.closed).toBe(true);
    return err;
  }

  it('rejects an oversized length word before buffering anything', async () => {
    const err = await hostile((_s, raw) => raw(lengthWord(0xffffffff)));
    expect(err).toBeInstanceOf(LibvirtProtocolError);
    expect((err as Error).message).toMatch(/packet length 4294967295 exceeds the 16777220-byte maximum/);
  });

  it('rejects a length word shorter than a header', async () => {
    const err = await hostile((_s, raw) => raw(lengthWord(8)));
    expect((err as Error).message).toMatch(/packet length 8 is shorter than the 28-byte minimum/);
  });

  it('rejects an unknown message type', async () => {
    const err = await hostile((s, raw) => {
      const pkt = encodePacket(header(s), (w) => w.string('h', 10));
      pkt.writeInt32BE(9, 16);
      raw(pkt);
    });
    expect((err as Error).message).toMatch(/unknown message type 9/);
  });

  it('rejects a foreign program', async () => {
    const err = await hostile((s, raw) => raw(encodePacket({ ...header(s), program: 0x12345678 }, (w) => w.string('h', 10))));
    expect((err as Error).message).toMatch(/unexpected program 0x12345678/);
  });

  it('fails only the affected call when a reply payload has a hostile string length', async () => {
    let n = 0;
    const client = await connectTo((conn, p) => {
      n++;
      if (n === 1) conn.raw(encodePacket(header(p.header.serial), (w) => w.uint32(0x7fffffff)));
      else conn.reply(p.header, (w) => w.string('fine', 10));
    });
    const err = await client.connectGetHostname().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtProtocolError);
    expect((err as Error).message).toMatch(/string length 2147483647 exceeds limit 4194304/);
    expect(await client.connectGetHostname()).toBe('fine');
    await client.close();
  });

  it('rejects a reply with trailing bytes (layout disagreement)', async () => {
    const client = await connectTo((conn, p) => conn.reply(p.header, (w) => w.string('h', 10).uint32(1)));
    await expect(client.connectGetHostname()).rejects.toThrow(/4 unexpected trailing bytes/);
    await client.close();
  });

  it('survives a frame split into single bytes', async () => {
    const client = await connectTo((conn, p) => {
      const pkt = encodePacket(header(p.header.serial), (w) => w.string('byte-by-byte', 100));
      for (const b of pkt) conn.raw(Buffer.from([b]));
    });
    expect(await client.connectGetHostname()).toBe('byte-by-byte');
    await client.close();
  });
});
