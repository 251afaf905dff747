// The framing layer on its own: request layout, and a decoder fed at every possible boundary.
import { ByteQueue } from '../../../src/nbd/byte-queue';
import { NbdProtocolError } from '../../../src/nbd/errors';
import { encodeRequest, ReplyDecoder, type ChunkHeader, type ReplySink } from '../../../src/nbd/frame';
import { CHUNK, DONE, largestAllocation, u16, u32, u64 } from './fake-server';

function simple(cookie: number, error: number, data = Buffer.alloc(0)): Buffer {
  return Buffer.concat([u32(0x67446698), u32(error), u64(cookie), data]);
}

function chunk(cookie: number, flags: number, type: number, payload: Buffer): Buffer {
  return Buffer.concat([u32(0x668e33ef), u16(flags), u16(type), u64(cookie), u32(payload.length), payload]);
}

class RecordingSink implements ReplySink {
  readonly events: string[] = [];
  readonly readBuffers = new Map<number, Buffer>();

  simpleReply(cookie: number, error: number): Buffer | null {
    this.events.push(`simple ${cookie} ${error}`);
    if (error !== 0) return null;
    const b = Buffer.alloc(6);
    this.readBuffers.set(cookie, b);
    return b;
  }
  simpleReplyDone(cookie: number): void {
    this.events.push(`simple-done ${cookie} ${this.readBuffers.get(cookie)?.toString() ?? ''}`);
  }
  chunkHeader(h: ChunkHeader): void {
    if (h.length > 1000) throw new NbdProtocolError(`too long: ${h.length}`);
    this.events.push(`header ${h.cookie} type ${h.type} len ${h.length}`);
  }
  chunkData(h: ChunkHeader, offset: number): Buffer {
    const b = Buffer.alloc(h.length - 8);
    this.readBuffers.set(h.cookie, b);
    this.events.push(`data ${h.cookie} at ${offset}`);
    return b;
  }
  chunk(h: ChunkHeader, payload: Buffer): void {
    const data = h.type === CHUNK.data ? this.readBuffers.get(h.cookie)?.toString() : payload.toString('hex');
    this.events.push(`chunk ${h.cookie} type ${h.type} flags ${h.flags} ${data ?? ''}`);
  }
}

describe('encodeRequest', () => {
  it('lays out magic, flags, type, cookie, offset and length big-endian', () => {
    const b = encodeRequest({ flags: 8, command: 7, cookie: 0x1_0000_0002, offset: 2 ** 40 + 5, length: 0xfffffe00 });
    expect(b.toString('hex')).toBe('25609513' + '0008' + '0007' + '0000000100000002' + '0000010000000005' + 'fffffe00');
  });
});

describe('ReplyDecoder', () => {
  const stream = Buffer.concat([
    simple(1, 0, Buffer.from('abcdef')),
    chunk(2, 0, CHUNK.data, Buffer.concat([u64(4096), Buffer.from('hello')])),
    chunk(2, DONE, CHUNK.hole, Buffer.concat([u64(4101), u32(11)])),
    simple(3, 5),
    chunk(4, DONE, CHUNK.none, Buffer.alloc(0)),
  ]);
  const expected = [
    'simple 1 0',
    'simple-done 1 abcdef',
    'header 2 type 1 len 13',
    'data 2 at 4096',
    'chunk 2 type 1 flags 0 hello',
    'header 2 type 2 len 12',
    'chunk 2 type 2 flags 1 00000000000010050000000b',
    'simple 3 5',
    'simple-done 3 ',
    'header 4 type 0 len 0',
    'chunk 4 type 0 flags 1 ',
  ];

  it('decodes the same messages whether the stream comes whole or one byte at a time', () => {
    const whole = new RecordingSink();
    new ReplyDecoder(whole).push(stream);
    expect(whole.events).toEqual(expected);
    for (const step of [1, 3, 7, 19]) {
      const sink = new RecordingSink();
      const d = new ReplyDecoder(sink);
      for (let i = 0; i < stream.length; i += step) d.push(stream.subarray(i, i + step));
      expect(sink.events).toEqual(expected);
      expect(d.atBoundary).toBe(true);
    }
  });

  it('asks the sink about a header before buffering its payload, and stays poisoned after', () => {
    const d = new ReplyDecoder(new RecordingSink());
    const header = Buffer.concat([u32(0x668e33ef), u16(0), u16(CHUNK.blockStatus), u64(9), u32(0xffffff00)]);
    expect(() => d.push(header)).toThrow(/too long: 4294967040/);
    expect(() => d.push(Buffer.alloc(10))).toThrow(NbdProtocolError);
  });
});

describe('ByteQueue', () => {
  it('takes exact counts across chunk boundaries, as views when it can', () => {
    const q = new ByteQueue();
    const first = Buffer.from('0123456789');
    q.push(first);
    q.push(Buffer.from('abcdef'));
    const view = q.take(4);
    expect(view.toString()).toBe('0123');
    expect(view.buffer).toBe(first.buffer);
    expect(q.take(8).toString()).toBe('456789ab');
    const dest = Buffer.alloc(6, '.');
    expect(q.takeInto(dest, 1, 10)).toBe(4);
    expect(dest.toString()).toBe('.cdef.');
    expect(q.length).toBe(0);
  });
});

describe('largestAllocation (the tests’ allocation probe)', () => {
  it('sees allocations made through Buffer.concat and Buffer.allocUnsafe', async () => {
    const seen = await largestAllocation(async () => {
      Buffer.concat([Buffer.alloc(10), Buffer.alloc(3 * 1024 * 1024)]);
    });
    expect(seen).toBeGreaterThanOrEqual(3 * 1024 * 1024);
  });
});
