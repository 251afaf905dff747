// XDR codec: exact wire bytes for known values, round-trip properties, and refusal of hostile
// lengths before allocation.
import fc from 'fast-check';
import { LibvirtProtocolError } from '../../../src/libvirt/errors';
import { TypedParamType } from '../../../src/libvirt/protocol';
import { readDomain, readRemoteError, readTypedParam, writeDomain, writeRemoteError, writeTypedParam, type TypedParam } from '../../../src/libvirt/types';
import { XdrReader, XdrWriter } from '../../../src/libvirt/xdr';

const hex = (b: Buffer): string => b.toString('hex');

describe('XDR encoding (RFC 4506 wire bytes)', () => {
  it('encodes integers big-endian in 4 or 8 bytes', () => {
    expect(hex(new XdrWriter().int32(-2).finish())).toBe('fffffffe');
    expect(hex(new XdrWriter().uint32(0x20008086).finish())).toBe('20008086');
    expect(hex(new XdrWriter().uhyper(9000000n).finish())).toBe('0000000000895440');
    expect(hex(new XdrWriter().hyper(-1n).finish())).toBe('ffffffffffffffff');
  });

  it('pads strings and opaques to 4 bytes with zeros', () => {
    expect(hex(new XdrWriter().string('vda', 10).finish())).toBe('0000000376646100');
    expect(hex(new XdrWriter().string('', 10).finish())).toBe('00000000');
    expect(hex(new XdrWriter().opaque(Buffer.from([1, 2, 3, 4, 5]), 10).finish())).toBe('000000050102030405000000');
  });

  it('encodes optional data with a boolean discriminant', () => {
    expect(hex(new XdrWriter().optional<string>(null, (w, v) => w.string(v, 10)).finish())).toBe('00000000');
    expect(hex(new XdrWriter().optional('a', (w, v) => w.string(v, 10)).finish())).toBe('000000010000000161000000');
  });

  it('refuses to encode values outside their range or over their limit', () => {
    expect(() => new XdrWriter().int32(2 ** 31)).toThrow(RangeError);
    expect(() => new XdrWriter().uint32(-1)).toThrow(RangeError);
    expect(() => new XdrWriter().uhyper(-1n)).toThrow(RangeError);
    expect(() => new XdrWriter().string('abcdef', 5)).toThrow(/exceeds limit 5/);
    expect(() => new XdrWriter().array([1, 2, 3], 2, (w, v) => w.int32(v))).toThrow(/exceeds limit 2/);
  });
});

describe('XDR decoding of hostile input', () => {
  it('rejects truncated data with a clear error', () => {
    expect(() => new XdrReader(Buffer.from([0, 0])).int32()).toThrow(/truncated XDR data: int needs 4 bytes at offset 0, only 2 left/);
    expect(() => new XdrReader(Buffer.from('0000000a6162', 'hex')).string(100)).toThrow(/truncated XDR data: string needs 12 bytes/);
  });

  it('checks declared lengths against the limit before allocating', () => {
    expect(() => new XdrReader(Buffer.from('ffffffff', 'hex')).string(4194304)).toThrow(/string length 4294967295 exceeds limit 4194304/);
    expect(() => new XdrReader(Buffer.from('ffffffff', 'hex')).opaque(16)).toThrow(/opaque length 4294967295 exceeds limit 16/);
  });

  it('checks array counts against both the limit and the bytes actually present', () => {
    expect(() => new XdrReader(Buffer.from('00010000', 'hex')).array(16384, 24, (r) => r.int32())).toThrow(/array length 65536 exceeds limit 16384/);
    expect(() => new XdrReader(Buffer.from('00004000', 'hex')).array(16384, 24, (r) => r.int32())).toThrow(/array length 16384 cannot fit in the 0 bytes left/);
  });

  it('rejects non-boolean discriminants and trailing bytes', () => {
    expect(() => new XdrReader(Buffer.from('00000002', 'hex')).bool()).toThrow(/invalid XDR boolean 2/);
    const r = new XdrReader(Buffer.from('0000000100000002', 'hex'));
    r.int32();
    expect(() => r.end()).toThrow(LibvirtProtocolError);
  });

  it('never throws anything but LibvirtProtocolError on random bytes (remote_error / domain decoders)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        for (const decode of [readRemoteError, readDomain, readTypedParam]) {
          try {
            decode(new XdrReader(Buffer.from(bytes)));
          } catch (e) {
            if (!(e instanceof LibvirtProtocolError)) throw e;
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('XDR round-trip properties', () => {
  it('round-trips every primitive', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
        fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
        fc.double({ noNaN: true }),
        fc.boolean(),
        fc.string({ unit: 'grapheme', maxLength: 50 }),
        fc.uint8Array({ maxLength: 40 }),
        (i, u, h, uh, d, b, s, o) => {
          const buf = new XdrWriter(1).int32(i).uint32(u).hyper(h).uhyper(uh).double(d).bool(b).string(s, 1000).opaque(o, 100).finish();
          expect(buf.length % 4).toBe(0);
          const r = new XdrReader(buf);
          expect([r.int32(), r.uint32(), r.hyper(), r.uhyper(), r.double(), r.bool(), r.string(1000), [...r.opaque(100)]]).toEqual([i, u, h, uh, d, b, s, [...o]]);
          r.end();
        },
      ),
    );
  });

  it('round-trips domains, remote errors and typed params', () => {
    const uuid = fc.uuid().map((u) => u.toLowerCase());
    const optStr = fc.option(fc.string({ maxLength: 30 }), { nil: null });
    const typed: fc.Arbitrary<TypedParam> = fc.oneof(
      fc.record({ field: fc.string({ maxLength: 20 }), type: fc.constant(TypedParamType.UInt as const), value: fc.integer({ min: 0, max: 2 ** 32 - 1 }) }),
      fc.record({ field: fc.string({ maxLength: 20 }), type: fc.constant(TypedParamType.ULLong as const), value: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }) }),
      fc.record({ field: fc.string({ maxLength: 20 }), type: fc.constant(TypedParamType.String as const), value: fc.string({ maxLength: 20 }) }),
      fc.record({ field: fc.string({ maxLength: 20 }), type: fc.constant(TypedParamType.Boolean as const), value: fc.boolean() }),
    );
    fc.assert(
      fc.property(
        fc.record({ name: fc.string({ maxLength: 64 }), uuid, id: fc.integer({ min: -1, max: 100000 }) }),
        fc.record({ code: fc.integer({ min: 0, max: 120 }), domain: fc.integer({ min: 0, max: 80 }), message: optStr, level: fc.integer({ min: 0, max: 2 }), str1: optStr, str2: optStr, str3: optStr, int1: fc.integer({ min: -5, max: 5 }), int2: fc.integer({ min: -5, max: 5 }) }),
        fc.array(typed, { maxLength: 5 }),
        (dom, err, params) => {
          const w = new XdrWriter();
          writeDomain(w, dom);
          writeRemoteError(w, err);
          w.array(params, 16, writeTypedParam);
          const r = new XdrReader(w.finish());
          expect(readDomain(r)).toEqual(dom);
          expect(readRemoteError(r)).toEqual(err);
          expect(r.array(16, 12, readTypedParam)).toEqual(params);
          r.end();
        },
      ),
    );
  });
});
