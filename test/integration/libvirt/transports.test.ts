// Other URIs and transports through the real daemon: test:///default, qemu+tcp:// (via a local
// TCP relay to the daemon's unix socket, since libvirtd here does not listen on TCP), keepalive.
import net from 'node:net';
import {
  DomainState,
  Libvirt,
  LibvirtConnectionError,
  LibvirtError,
  VIR_ERR_NO_SUPPORT,
  resolveTarget,
  parseUri,
} from '../../../src/libvirt';

describe('test:///default through the daemon', () => {
  let client: Libvirt;
  beforeAll(async () => {
    client = await Libvirt.connect('test:///default');
  });
  afterAll(async () => {
    await client.close();
  });

  it('talks to the test driver (its canned "test" domain), not QEMU', async () => {
    expect(await client.connectGetType()).toBe('TEST');
    const dom = await client.domainLookupByName('test');
    const info = await client.domainGetInfo(dom);
    expect(info.state).toBe(DomainState.Running);
    expect(info.nrVirtCpu).toBe(2);
  });

  it('refuses blockJobAbort with VIR_ERR_NO_SUPPORT (the live → cold fallback trigger)', async () => {
    const dom = await client.domainLookupByName('test');
    const err = await client.domainBlockJobAbort(dom, 'vda').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtError);
    expect((err as LibvirtError).code).toBe(VIR_ERR_NO_SUPPORT);
    expect((err as LibvirtError).message).toMatch(/virDomainBlockJobAbort/);
  });
});

describe('qemu+tcp:// transport', () => {
  const daemonSocket = (resolveTarget(parseUri('qemu:///system')) as { path: string }).path;
  let relay: net.Server;
  let port = 0;
  const links: net.Socket[] = [];

  beforeAll(async () => {
    relay = net.createServer((inbound) => {
      const outbound = net.createConnection({ path: daemonSocket });
      links.push(inbound, outbound);
      inbound.pipe(outbound).pipe(inbound);
      const drop = (): void => {
        inbound.destroy();
        outbound.destroy();
      };
      inbound.on('error', drop).on('close', drop);
      outbound.on('error', drop).on('close', drop);
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
    port = (relay.address() as net.AddressInfo).port;
  });
  afterAll(async () => {
    for (const l of links) l.destroy();
    await new Promise<void>((r) => relay.close(() => r()));
  });

  it('opens qemu:///system on the daemon over TCP', async () => {
    const client = await Libvirt.connect(`qemu+tcp://127.0.0.1:${port}/system`);
    try {
      expect(await client.connectGetType()).toBe('QEMU');
      expect(await client.connectGetLibVersion()).toBeGreaterThanOrEqual(9_000_000);
    } finally {
      await client.close();
    }
  });

  it('a TCP link cut mid-session fails calls with LibvirtConnectionError instead of hanging', async () => {
    const client = await Libvirt.connect(`qemu+tcp://127.0.0.1:${port}/system`, { callTimeoutMs: 30_000 });
    const lost = new Promise<Error>((r) => client.onClose(r));
    for (const l of links) l.destroy();
    const err = await client.connectGetHostname().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtConnectionError);
    expect(await lost).toBeInstanceOf(LibvirtConnectionError);
    expect(client.closed).toBe(true);
  });

  it('refuses a port nobody listens on with LibvirtConnectionError', async () => {
    const err = await Libvirt.connect('qemu+tcp://127.0.0.1:1/system', { connectTimeoutMs: 2_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtConnectionError);
  });
});

describe('keepalive with the real daemon', () => {
  it('stays connected across idle periods far longer than interval × count (the daemon answers our pings)', async () => {
    const client = await Libvirt.connect('qemu:///system', { keepaliveIntervalMs: 100, keepaliveCount: 3 });
    try {
      await new Promise((r) => setTimeout(r, 1_500));
      expect(client.closed).toBe(false);
      expect(await client.connectGetType()).toBe('QEMU');
    } finally {
      await client.close();
    }
  });
});
