// The transmission phase against scripted servers: concurrency, splitting and reassembly, server
// errors, and every breach a malformed peer can commit, each with its typed error and no allocation
// of a length the peer merely declared.
import {
  NbdClient,
  NbdConnectionError,
  NbdError,
  NbdProtocolError,
  NbdTimeoutError,
  NbdUsageError,
  NBD_EINVAL,
  NBD_EIO,
  NBD_ENOSPC,
  NBD_ESHUTDOWN,
  type NbdConnectOptions,
} from '../../../src/nbd';
import {
  CHUNK,
  CMD,
  DONE,
  diskHandler,
  largestAllocation,
  serve,
  standardHandshake,
  startFakeServer,
  u16,
  u32,
  u64,
  type FakeServer,
  type HandshakeScript,
  type NbdRequest,
  type Peer,
} from './fake-server';

const MiB = 1024 * 1024;
let server: FakeServer | null = null;

afterEach(async () => {
  await server?.close();
  server = null;
});

async function connectTo(
  handshake: HandshakeScript,
  handler: (peer: Peer) => (req: NbdRequest) => void | Promise<void>,
  opts: Partial<NbdConnectOptions> = {},
): Promise<{ client: NbdClient; peer: () => Peer }> {
  server = await startFakeServer(async (peer) => {
    await standardHandshake(peer, { contexts: { 'base:allocation': 1 }, ...handshake });
    await serve(peer, handler(peer));
  });
  const client = await NbdClient.connect({ socketPath: server.socketPath, exportName: 'disk', connectTimeoutMs: 2_000, ...opts });
  const s = server;
  return { client, peer: () => s.peers[0] as Peer };
}

function failure(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => new Error('expected a rejection'),
    (e: unknown) => e,
  );
}

function pattern(size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 7 + (i >> 9)) & 0xff;
  return b;
}

describe('reads', () => {
  it('matches out-of-order replies to their requests by cookie', async () => {
    const image = pattern(MiB);
    const held: NbdRequest[] = [];
    const { client } = await connectTo({ size: MiB }, (peer) => (req) => {
      held.push(req);
      if (held.length < 8) return;
      for (const r of held.reverse()) peer.dataChunk(r.cookie, r.offset, image.subarray(r.offset, r.offset + r.length), DONE);
    });
    const offsets = Array.from({ length: 8 }, (_, i) => i * 65536);
    const reads = await Promise.all(offsets.map((o) => client.read(o, 4096)));
    reads.forEach((b, i) => expect(b.equals(image.subarray(offsets[i], (offsets[i] as number) + 4096))).toBe(true));
    await client.close();
  });

  it('assembles data and hole chunks in any order; holes read as zeros', async () => {
    const { client } = await connectTo({ size: MiB }, (peer) => (req) => {
      // 12 KiB read: [hole 4K][data 4K of 0xab][hole 4K], sent last-first, then a NONE chunk
      peer.holeChunk(req.cookie, req.offset + 8192, 4096);
      peer.dataChunk(req.cookie, req.offset + 4096, Buffer.alloc(4096, 0xab));
      peer.holeChunk(req.cookie, req.offset, 4096);
      peer.done(req.cookie);
    });
    const b = await client.read(65536, 12288);
    expect(b.subarray(0, 4096).every((x) => x === 0)).toBe(true);
    expect(b.subarray(4096, 8192).every((x) => x === 0xab)).toBe(true);
    expect(b.subarray(8192).every((x) => x === 0)).toBe(true);
    await client.close();
  });

  it("splits a read larger than the server's maximum payload, each request aligned and within it", async () => {
    const image = pattern(4 * MiB);
    const { client, peer } = await connectTo({ size: 4 * MiB, blockSize: [512, 4096, 65536] }, (p) => diskHandler(p, { image }));
    const b = await client.read(1000, 300_000); // unaligned: widened to the 512-byte minimum block
    expect(b.equals(image.subarray(1000, 301_000))).toBe(true);
    const reads = peer().requests.filter((r) => r.command === CMD.read);
    expect(reads.length).toBe(5);
    for (const r of reads) {
      expect(r.length).toBeLessThanOrEqual(65536);
      expect(r.offset % 512).toBe(0);
      expect(r.length % 512).toBe(0);
    }
    await client.close();
  });

  it('caps requests at maxRequestBytes even when the server allows more', async () => {
    const image = pattern(8 * MiB);
    const { client, peer } = await connectTo({ size: 8 * MiB }, (p) => diskHandler(p, { image }), { maxRequestBytes: MiB });
    expect((await client.read(0, 8 * MiB)).equals(image)).toBe(true);
    expect(peer().requests.filter((r) => r.command === CMD.read).map((r) => r.length)).toEqual(Array(8).fill(MiB));
    await client.close();
  });

  it('keeps at most maxInFlight requests on the wire', async () => {
    let outstanding = 0;
    let most = 0;
    const { client } = await connectTo({ size: MiB }, (peer) => (req) => {
      outstanding++;
      most = Math.max(most, outstanding);
      setTimeout(() => {
        outstanding--;
        peer.holeChunk(req.cookie, req.offset, req.length, DONE);
      }, 5);
    }, { maxInFlight: 3 });
    await Promise.all(Array.from({ length: 20 }, (_, i) => client.read(i * 4096, 4096)));
    expect(most).toBe(3);
    await client.close();
  });

  it('reads with simple replies when structured replies were refused', async () => {
    const image = pattern(MiB);
    const { client } = await connectTo({ size: MiB, structured: false }, (peer) => (req) => {
      if (req.offset === 0) peer.simpleReply(req.cookie, 0, image.subarray(req.offset, req.offset + req.length));
      else peer.simpleReply(req.cookie, NBD_ENOSPC);
    }, { metaContexts: [] });
    expect((await client.read(0, 8192)).equals(image.subarray(0, 8192))).toBe(true);
    const err = await failure(client.read(8192, 512));
    expect(err).toBeInstanceOf(NbdError);
    expect(err).toMatchObject({ code: NBD_ENOSPC, codeName: 'ENOSPC', command: CMD.read, offset: 8192, length: 512 });
    await client.close();
  });

  it('refuses reads outside the export before sending anything', async () => {
    const { client, peer } = await connectTo({ size: MiB }, () => () => undefined);
    expect(await failure(client.read(MiB - 10, 20))).toBeInstanceOf(NbdUsageError);
    expect(await failure(client.read(-1, 20))).toBeInstanceOf(NbdUsageError);
    expect(await failure(client.blockStatus('qemu:dirty-bitmap:x', 0, 10))).toBeInstanceOf(NbdUsageError);
    expect(peer().requests).toEqual([]);
    client.destroy();
  });
});

describe('server errors', () => {
  it('maps an error chunk to NbdError with its code and message; the connection stays usable', async () => {
    const { client } = await connectTo({ size: MiB }, (peer) => (req) => {
      if (req.offset === 0) peer.errorChunk(req.cookie, NBD_EIO, 'read error on backing file');
      else if (req.offset === 4096) {
        const m = Buffer.from('bad sector');
        peer.chunk(req.cookie, DONE, CHUNK.errorOffset, Buffer.concat([u32(NBD_EIO), u16(m.length), m, u64(4096 + 512)]));
      } else if (req.offset === 8192) peer.errorChunk(req.cookie, 9999, '');
      else peer.holeChunk(req.cookie, req.offset, req.length, DONE);
    });
    const plain = await failure(client.read(0, 4096));
    expect(plain).toBeInstanceOf(NbdError);
    expect(plain).toMatchObject({ code: NBD_EIO, codeName: 'EIO', serverMessage: 'read error on backing file', retryable: false });
    expect(await failure(client.read(4096, 4096))).toMatchObject({ code: NBD_EIO, errorOffset: 4608, serverMessage: 'bad sector' });
    expect(await failure(client.read(8192, 4096))).toMatchObject({ code: NBD_EINVAL, wireCode: 9999 });
    expect((await client.read(65536, 512)).every((b) => b === 0)).toBe(true);
    expect(client.closed).toBe(false);
    await client.close();
  });

  it('on ESHUTDOWN refuses new requests and disconnects softly once the others are answered', async () => {
    const { client, peer } = await connectTo({ size: MiB }, (p) => (req) => {
      if (req.offset === 0) p.errorChunk(req.cookie, NBD_ESHUTDOWN, 'server shutting down');
      else setTimeout(() => p.holeChunk(req.cookie, req.offset, req.length, DONE), 30);
    });
    const slow = client.read(4096, 4096);
    const err = await failure(client.read(0, 4096));
    expect(err).toMatchObject({ name: 'NbdError', code: NBD_ESHUTDOWN, retryable: true });
    expect(await failure(client.read(8192, 512))).toBeInstanceOf(NbdConnectionError);
    await expect(slow).resolves.toHaveLength(4096);
    await waitFor(() => client.closed);
    expect(peer().requests.map((r) => r.command)).toEqual([CMD.read, CMD.read, CMD.disc]);
  });
});

describe('malformed peers', () => {
  it('drops the connection on a reply for a cookie nobody sent; pending requests reject', async () => {
    const { client } = await connectTo({ size: MiB }, (peer) => (req) => peer.holeChunk(req.cookie + 1000n, req.offset, req.length, DONE));
    const err = await failure(client.read(0, 4096));
    expect(err).toBeInstanceOf(NbdProtocolError);
    expect((err as Error).message).toMatch(/cookie \d+, which no outstanding request carries/);
    expect(client.closed).toBe(true);
    expect(await failure(client.read(0, 512))).toBeInstanceOf(NbdConnectionError);
  });

  it('refuses a data chunk longer than the request without allocating its declared length', async () => {
    let err: unknown;
    const largest = await largestAllocation(async () => {
      const { client } = await connectTo({ size: MiB }, (peer) => (req) => peer.chunk(req.cookie, DONE, CHUNK.data, u64(req.offset), 0x7ffffff0));
      err = await failure(client.read(0, 4096));
    });
    expect(err).toBeInstanceOf(NbdProtocolError);
    expect((err as Error).message).toMatch(/data chunk of 2147483632 bytes \(at most 4104\)/);
    expect(largest).toBeLessThan(MiB);
  });

  it('refuses data outside the request, overlapping data, and success without full coverage', async () => {
    const cases: Array<(peer: Peer, req: NbdRequest) => void> = [
      (p, r) => p.dataChunk(r.cookie, r.offset + 4096, Buffer.alloc(512), DONE),
      (p, r) => {
        p.dataChunk(r.cookie, r.offset, Buffer.alloc(2048));
        p.holeChunk(r.cookie, r.offset + 1024, 3072, DONE);
      },
      (p, r) => p.dataChunk(r.cookie, r.offset, Buffer.alloc(2048), DONE),
      (p, r) => p.simpleReply(r.cookie, 0, Buffer.alloc(r.length)),
      (p, r) => p.blockStatusChunk(r.cookie, 1, [[4096, 0]], DONE),
      (p, r) => p.chunk(r.cookie, 0, CHUNK.none),
    ];
    const messages: string[] = [];
    for (const reply of cases) {
      const { client } = await connectTo({ size: MiB }, (peer) => (req) => reply(peer, req));
      const err = await failure(client.read(0, 4096));
      expect(err).toBeInstanceOf(NbdProtocolError);
      messages.push((err as Error).message);
      await server?.close();
      server = null;
    }
    expect(messages[0]).toMatch(/outside the request/);
    expect(messages[1]).toMatch(/overlaps earlier content/);
    expect(messages[2]).toMatch(/success after only 2048 of 4096 bytes/);
    expect(messages[3]).toMatch(/simple reply with data/);
    expect(messages[4]).toMatch(/chunk type 5/);
    expect(messages[5]).toMatch(/without NBD_REPLY_FLAG_DONE/);
  });

  it('refuses a block-status chunk with more descriptors than the cap, before buffering it', async () => {
    let err: unknown;
    const largest = await largestAllocation(async () => {
      const { client } = await connectTo({ size: MiB }, (peer) => (req) => peer.chunk(req.cookie, DONE, CHUNK.blockStatus, u32(1), 4 + 8 * (1 << 24)));
      err = await failure(client.blockStatus('base:allocation', 0, MiB));
    });
    expect(err).toBeInstanceOf(NbdProtocolError);
    expect((err as Error).message).toMatch(/16777216 descriptors \(at most 1048576\)/);
    expect(largest).toBeLessThan(MiB);
    await server?.close();
    const small = await connectTo({ size: MiB }, (peer) => (req) => peer.blockStatusChunk(req.cookie, 1, [[512, 0], [512, 1], [512, 0]], DONE), { maxBlockStatusDescriptors: 2 });
    expect(await failure(small.client.blockStatus('base:allocation', 0, MiB))).toBeInstanceOf(NbdProtocolError);
  });

  it('refuses block status for an unselected context id, a missing context, and extents past the request', async () => {
    const replies: Array<(peer: Peer, req: NbdRequest) => void> = [
      (p, r) => p.blockStatusChunk(r.cookie, 99, [[r.length, 0]], DONE),
      (p, r) => p.done(r.cookie),
      (p, r) => p.blockStatusChunk(r.cookie, 1, [[r.length, 0], [512, 0]], DONE),
      (p, r) => p.simpleReply(r.cookie, 0),
    ];
    for (const reply of replies) {
      const { client } = await connectTo({ size: MiB }, (peer) => (req) => reply(peer, req));
      expect(await failure(client.blockStatus('base:allocation', 0, 4096))).toBeInstanceOf(NbdProtocolError);
      await server?.close();
      server = null;
    }
  });

  it('refuses a structured chunk when structured replies were never negotiated', async () => {
    const { client } = await connectTo({ size: MiB, structured: false }, (peer) => (req) => peer.holeChunk(req.cookie, req.offset, req.length, DONE), { metaContexts: [] });
    const err = await failure(client.read(0, 4096));
    expect(err).toBeInstanceOf(NbdProtocolError);
    expect((err as Error).message).toMatch(/refused structured replies/);
  });

  it('refuses a reply with a bad magic', async () => {
    const { client } = await connectTo({ size: MiB }, (peer) => () => peer.write(Buffer.alloc(32, 0x55)));
    const err = await failure(client.read(0, 4096));
    expect(err).toBeInstanceOf(NbdProtocolError);
    expect((err as Error).message).toMatch(/reply magic 0x55555555/);
  });
});

describe('block status', () => {
  it('returns the extents of the asked context, clipped to the asked range', async () => {
    const { client } = await connectTo({ size: MiB, contexts: { 'base:allocation': 3, 'qemu:dirty-bitmap:b0': 4 } }, (peer) => (req) => {
      peer.blockStatusChunk(req.cookie, 4, [[req.length, 1]]);
      if (req.offset === 0) peer.blockStatusChunk(req.cookie, 3, [[4096, 0], [8192, 3], [MiB, 3]], DONE);
      else peer.blockStatusChunk(req.cookie, 3, [[req.length, 0]], DONE);
    }, { metaContexts: ['base:allocation', 'qemu:dirty-bitmap:b0'] });
    expect(await client.blockStatus('base:allocation', 0, 65536)).toEqual([
      { offset: 0, length: 4096, flags: 0 },
      { offset: 4096, length: 8192, flags: 3 },
      { offset: 12288, length: 65536 - 12288, flags: 3 },
    ]);
    expect(await client.blockStatus('qemu:dirty-bitmap:b0', 4096, 4096)).toEqual([{ offset: 4096, length: 4096, flags: 1 }]);
    await client.close();
  });
});

describe('block status with NBD_CMD_FLAG_REQ_ONE', () => {
  it('sends the flag and holds the server to one extent', async () => {
    const { client, peer } = await connectTo({ size: MiB }, (p) => (req) => {
      if (req.offset === 0) p.blockStatusChunk(req.cookie, 1, [[4096, 3]], DONE);
      else p.blockStatusChunk(req.cookie, 1, [[512, 0], [512, 3]], DONE);
    });
    expect(await client.blockStatus('base:allocation', 0, 65536, { reqOne: true })).toEqual([{ offset: 0, length: 4096, flags: 3 }]);
    expect(peer().requests[0]?.flags).toBe(1 << 3);
    expect(await failure(client.blockStatus('base:allocation', 4096, 65536, { reqOne: true }))).toBeInstanceOf(NbdProtocolError);
  });
});

describe('connection lifecycle', () => {
  it('speaks the same protocol over TCP', async () => {
    const image = pattern(MiB);
    server = await startFakeServer(
      async (peer) => {
        await standardHandshake(peer, { size: MiB, contexts: { 'base:allocation': 1 } });
        await serve(peer, diskHandler(peer, { image }));
      },
      { tcp: true },
    );
    const client = await NbdClient.connect({ host: '127.0.0.1', port: server.port, exportName: 'disk' });
    expect((await client.read(4096, 65536)).equals(image.subarray(4096, 69632))).toBe(true);
    await client.close();
  });

  it('close() waits for outstanding requests, then sends NBD_CMD_DISC', async () => {
    const { client, peer } = await connectTo({ size: MiB }, (p) => (req) => {
      setTimeout(() => p.holeChunk(req.cookie, req.offset, req.length, DONE), 30);
    });
    const reads = [client.read(0, 4096), client.read(4096, 4096)];
    await client.close();
    await expect(Promise.all(reads)).resolves.toHaveLength(2);
    const commands = peer().requests.map((r) => r.command);
    expect(commands).toEqual([CMD.read, CMD.read, CMD.disc]);
    const disc = peer().requests[2] as NbdRequest;
    expect([disc.offset, disc.length]).toEqual([0, 0]);
    expect(client.closed).toBe(true);
    expect(await failure(client.read(0, 512))).toBeInstanceOf(NbdConnectionError);
  });

  it('rejects pending reads with NbdConnectionError when the server hangs up mid-reply', async () => {
    const { client } = await connectTo({ size: MiB }, (peer) => (req) => {
      peer.chunk(req.cookie, DONE, CHUNK.data, Buffer.concat([u64(req.offset), Buffer.alloc(100)]), 8 + req.length);
      setTimeout(() => peer.socket.destroy(), 10);
    });
    const err = await failure(client.read(0, 4096));
    expect(err).toBeInstanceOf(NbdConnectionError);
    expect((err as Error).message).toMatch(/closed by the server with 1 request\(s\) outstanding/);
  });

  it('times out a server that goes silent with requests outstanding', async () => {
    const { client } = await connectTo({ size: MiB }, () => () => undefined, { replyTimeoutMs: 150 });
    const err = await failure(client.read(0, 4096));
    expect(err).toBeInstanceOf(NbdTimeoutError);
    expect(client.closed).toBe(true);
  });
});

async function waitFor(cond: () => boolean, ms = 2_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
