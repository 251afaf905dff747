// Handshake against scripted servers: every refusal and every malformed greeting or option reply
// settles with its typed error, and no declared length is allocated before it is checked.
import os from 'node:os';
import path from 'node:path';
import {
  NbdClient,
  NbdConnectionError,
  NbdMetaContextError,
  NbdOptionError,
  NbdProtocolError,
  NbdTimeoutError,
  NbdUsageError,
  NBD_REP_ERR_BLOCK_SIZE_REQD,
  NBD_REP_ERR_INVALID,
  NBD_REP_ERR_PLATFORM,
  NBD_REP_ERR_POLICY,
  NBD_REP_ERR_SHUTDOWN,
  NBD_REP_ERR_TLS_REQD,
  NBD_REP_ERR_TOO_BIG,
  NBD_REP_ERR_UNKNOWN,
  NBD_REP_ERR_UNSUP,
  type NbdConnectOptions,
} from '../../../src/nbd';
import { INIT_MAGIC, OPT, REP, largestAllocation, standardHandshake, startFakeServer, u16, u32, type FakeServer, type Peer } from './fake-server';

let server: FakeServer | null = null;

afterEach(async () => {
  await server?.close();
  server = null;
});

async function connectTo(script: (peer: Peer) => Promise<unknown>, opts: Partial<NbdConnectOptions> = {}): Promise<NbdClient> {
  server = await startFakeServer(script);
  return NbdClient.connect({ socketPath: server.socketPath, exportName: 'disk', connectTimeoutMs: 2_000, ...opts });
}

function failure(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => new Error('expected a rejection'),
    (e: unknown) => e,
  );
}

describe('handshake', () => {
  it('negotiates fixed newstyle, structured replies, base:allocation and NBD_OPT_GO with block sizes', async () => {
    let seen = { clientFlags: -1, options: [] as number[] };
    const client = await connectTo(async (peer) => {
      seen = await standardHandshake(peer, { size: 10 * 1024 * 1024, contexts: { 'base:allocation': 7 }, blockSize: [512, 4096, 1024 * 1024] });
    });
    expect(seen.clientFlags).toBe(0b11); // FIXED_NEWSTYLE | NO_ZEROES
    expect(seen.options).toEqual([OPT.structuredReply, OPT.setMetaContext, OPT.go]);
    expect(client.exportSize).toBe(10 * 1024 * 1024);
    expect(client.blockSize).toEqual({ minimum: 512, preferred: 4096, maximum: 1024 * 1024, advertised: true });
    expect(client.structuredReplies).toBe(true);
    expect([...client.contexts]).toEqual([['base:allocation', 7]]);
    expect(client.readOnly).toBe(true);
    expect(client.maxRequestLength).toBe(1024 * 1024);
    client.destroy();
  });

  it('uses the spec defaults when the server sends no NBD_INFO_BLOCK_SIZE', async () => {
    const client = await connectTo((peer) => standardHandshake(peer, { blockSize: null, contexts: { 'base:allocation': 1 } }));
    expect(client.blockSize).toEqual({ minimum: 1, preferred: 4096, maximum: 32 * 1024 * 1024, advertised: false });
    client.destroy();
  });

  it('rejects a server whose greeting is not NBDMAGIC as NbdProtocolError', async () => {
    const err = await failure(connectTo(async (peer) => peer.write(Buffer.from('SSH-2.0-OpenSSH_9.2\r\n'))));
    expect(err).toBeInstanceOf(NbdProtocolError);
    expect((err as Error).message).toMatch(/not an NBD server/);
  });

  it('refuses an oldstyle server and one without fixed newstyle', async () => {
    const oldstyle = await failure(connectTo(async (peer) => peer.write(INIT_MAGIC, Buffer.from('0000420281861253', 'hex'))));
    expect(oldstyle).toBeInstanceOf(NbdProtocolError);
    expect((oldstyle as Error).message).toMatch(/oldstyle/);
    await server?.close();
    const plain = await failure(connectTo(async (peer) => peer.greet(0)));
    expect(plain).toBeInstanceOf(NbdProtocolError);
    expect((plain as Error).message).toMatch(/fixed newstyle/);
  });

  it('refuses an option reply that declares a huge payload without allocating it', async () => {
    let err: unknown;
    const largest = await largestAllocation(async () => {
      err = await failure(
        connectTo(async (peer) => {
          peer.greet();
          await peer.readClientFlags();
          const { option } = await peer.readOption();
          peer.optionReply(option, REP.ack, Buffer.alloc(0), 0xfffffff0); // declares ~4 GiB, sends nothing
        }),
      );
    });
    expect(err).toBeInstanceOf(NbdProtocolError);
    expect((err as Error).message).toMatch(/4294967280-byte reply .* cap is 8192/);
    expect(largest).toBeLessThan(64 * 1024);
  });

  it('rejects an option reply with the wrong magic or for another option', async () => {
    const wrongMagic = await failure(
      connectTo(async (peer) => {
        peer.greet();
        await peer.readClientFlags();
        await peer.readOption();
        peer.write(Buffer.alloc(20, 0x41));
      }),
    );
    expect(wrongMagic).toBeInstanceOf(NbdProtocolError);
    await server?.close();
    const wrongOption = await failure(
      connectTo(async (peer) => {
        peer.greet();
        await peer.readClientFlags();
        await peer.readOption();
        peer.optionReply(OPT.go, REP.ack);
      }),
    );
    expect(wrongOption).toBeInstanceOf(NbdProtocolError);
    expect((wrongOption as Error).message).toMatch(/answered NBD_OPT_GO while NBD_OPT_STRUCTURED_REPLY was asked/);
  });

  it('refuses to go on when the server lacks structured replies but meta contexts were asked for', async () => {
    let aborted = false;
    const err = await failure(
      connectTo(async (peer) => {
        peer.greet();
        await peer.readClientFlags();
        const { option } = await peer.readOption();
        peer.optionReply(option, NBD_REP_ERR_UNSUP);
        aborted = (await peer.readOption()).option === OPT.abort; // a soft disconnect follows
      }),
    );
    expect(err).toBeInstanceOf(NbdOptionError);
    expect(err).toMatchObject({ code: NBD_REP_ERR_UNSUP, codeName: 'NBD_REP_ERR_UNSUP', option: OPT.structuredReply });
    expect((err as Error).message).toMatch(/need structured replies/);
    await waitFor(() => aborted);
  });

  it('goes on with simple replies when structured replies are refused and no meta context is wanted', async () => {
    const client = await connectTo((peer) => standardHandshake(peer, { structured: false }), { metaContexts: [] });
    expect(client.structuredReplies).toBe(false);
    expect(client.contexts.size).toBe(0);
    client.destroy();
  });

  it('fails with NbdMetaContextError naming a context the server did not select', async () => {
    const err = await failure(
      connectTo((peer) => standardHandshake(peer, { contexts: { 'base:allocation': 1 } }), { metaContexts: ['base:allocation', 'qemu:dirty-bitmap:b0'] }),
    );
    expect(err).toBeInstanceOf(NbdMetaContextError);
    expect(err).toMatchObject({ missing: ['qemu:dirty-bitmap:b0'], granted: ['base:allocation'] });
    expect((err as Error).message).toMatch(/no metadata context 'qemu:dirty-bitmap:b0'/);
  });

  it.each([
    ['NBD_REP_ERR_UNKNOWN', NBD_REP_ERR_UNKNOWN],
    ['NBD_REP_ERR_POLICY', NBD_REP_ERR_POLICY],
    ['NBD_REP_ERR_INVALID', NBD_REP_ERR_INVALID],
    ['NBD_REP_ERR_PLATFORM', NBD_REP_ERR_PLATFORM],
    ['NBD_REP_ERR_TLS_REQD', NBD_REP_ERR_TLS_REQD],
    ['NBD_REP_ERR_SHUTDOWN', NBD_REP_ERR_SHUTDOWN],
    ['NBD_REP_ERR_BLOCK_SIZE_REQD', NBD_REP_ERR_BLOCK_SIZE_REQD],
    ['NBD_REP_ERR_TOO_BIG', NBD_REP_ERR_TOO_BIG],
  ])('turns NBD_OPT_GO refused with %s into NbdOptionError carrying that code and the server message', async (name, code) => {
    const err = await failure(
      connectTo(
        async (peer) => {
          peer.greet();
          await peer.readClientFlags();
          for (;;) {
            const { option } = await peer.readOption();
            if (option === OPT.go) peer.optionReply(option, code, Buffer.from('export disk: not today'));
            else if (option === OPT.abort) return peer.optionReply(option, REP.ack);
            else peer.optionReply(option, REP.ack);
          }
        },
        { metaContexts: [] },
      ),
    );
    expect(err).toBeInstanceOf(NbdOptionError);
    expect(err).toMatchObject({ code, codeName: name, option: OPT.go, serverMessage: 'export disk: not today', retryable: code === NBD_REP_ERR_SHUTDOWN });
  });

  it('turns a refused NBD_OPT_SET_META_CONTEXT into NbdOptionError', async () => {
    const err = await failure(
      connectTo(async (peer) => {
        peer.greet();
        await peer.readClientFlags();
        for (;;) {
          const { option } = await peer.readOption();
          peer.optionReply(option, option === OPT.setMetaContext ? NBD_REP_ERR_TOO_BIG : REP.ack);
        }
      }),
    );
    expect(err).toMatchObject({ name: 'NbdOptionError', code: NBD_REP_ERR_TOO_BIG, option: OPT.setMetaContext });
  });

  it('rejects a malformed NBD_INFO_EXPORT and impossible block sizes', async () => {
    const shortInfo = await failure(
      connectTo(
        async (peer) => {
          peer.greet();
          await peer.readClientFlags();
          await peer.readOption();
          peer.optionReply(OPT.structuredReply, REP.ack);
          await peer.readOption();
          peer.optionReply(OPT.go, REP.info, Buffer.concat([u16(0), u32(1)]));
        },
        { metaContexts: [] },
      ),
    );
    expect(shortInfo).toBeInstanceOf(NbdProtocolError);
    await server?.close();
    const badSizes = await failure(connectTo((peer) => standardHandshake(peer, { blockSize: [3, 4096, 65536] }), { metaContexts: [] }));
    expect(badSizes).toBeInstanceOf(NbdProtocolError);
    expect((badSizes as Error).message).toMatch(/power of 2/);
  });

  it('falls back to NBD_OPT_EXPORT_NAME when the server does not know NBD_OPT_GO', async () => {
    let exportName = '';
    const client = await connectTo(
      async (peer) => {
        peer.greet();
        await peer.readClientFlags();
        for (;;) {
          const { option, data } = await peer.readOption();
          if (option !== OPT.exportName) {
            peer.optionReply(option, REP.errUnsup);
            continue;
          }
          exportName = data.toString();
          const reply = Buffer.alloc(10);
          reply.writeBigUInt64BE(4096n, 0);
          reply.writeUInt16BE(1, 8);
          peer.write(reply); // NO_ZEROES was negotiated: no 124 zero bytes
          return;
        }
      },
      { metaContexts: [] },
    );
    expect(exportName).toBe('disk');
    expect(client.exportSize).toBe(4096);
    expect(client.structuredReplies).toBe(false);
    client.destroy();
  });

  it('times out a server that accepts and never speaks', async () => {
    const started = Date.now();
    const err = await failure(connectTo(async () => undefined, { connectTimeoutMs: 200 }));
    expect(err).toBeInstanceOf(NbdTimeoutError);
    expect(err).toBeInstanceOf(NbdConnectionError);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('reports a missing socket as NbdConnectionError and bad options as NbdUsageError', async () => {
    const missing = await failure(NbdClient.connect({ socketPath: path.join(os.tmpdir(), 'no-such-nbd-dir', 'nbd.sock') }));
    expect(missing).toBeInstanceOf(NbdConnectionError);
    const both = await failure(NbdClient.connect({ socketPath: 'x', host: 'localhost', port: 10809 }));
    expect(both).toBeInstanceOf(NbdUsageError);
    const badContext = await failure(NbdClient.connect({ socketPath: 'x', metaContexts: ['allocation'] }));
    expect(badContext).toBeInstanceOf(NbdUsageError);
    const longName = await failure(NbdClient.connect({ socketPath: 'x', exportName: 'x'.repeat(5000) }));
    expect(longName).toBeInstanceOf(NbdUsageError);
  });
});

async function waitFor(cond: () => boolean, ms = 2_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
