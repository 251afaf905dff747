// Packet framing: header layout, limits from virnetprotocol.x, and stream re-assembly.
import fc from 'fast-check';
import { FrameDecoder, MAX_PACKET_LENGTH, MessageStatus, MessageType, decodePacket, encodePacket, type Header } from '../../../src/libvirt/frame';
import { LibvirtProtocolError } from '../../../src/libvirt/errors';
import { Procedure, REMOTE_PROGRAM } from '../../../src/libvirt/protocol';
import { XdrReader } from '../../../src/libvirt/xdr';

const call = (serial: number): Header => ({ program: REMOTE_PROGRAM, version: 1, procedure: Procedure.DomainGetInfo, type: MessageType.Call, serial, status: MessageStatus.Ok });

describe('frame encoding', () => {
  it('writes the length word (counting itself) and the 24-byte header in wire order', () => {
    const pkt = encodePacket(call(7), (w) => w.int32(1));
    expect(pkt.toString('hex')).toBe('00000020' + '20008086' + '00000001' + '00000010' + '00000000' + '00000007' + '00000000' + '00000001');
    const back = decodePacket(pkt);
    expect(back.header).toEqual(call(7));
    expect(new XdrReader(back.payload).int32()).toBe(1);
  });

  it('the libvirt limits are the ones from virnetprotocol.x', () => {
    expect(MAX_PACKET_LENGTH).toBe(16777216 + 4);
  });

  it('rejects a packet whose length word disagrees with its size', () => {
    const pkt = encodePacket(call(1));
    expect(() => decodePacket(pkt.subarray(0, 20))).toThrow(/declares 28 bytes but has 20/);
  });

  it('rejects an unknown status', () => {
    const pkt = encodePacket(call(1));
    pkt.writeInt32BE(5, 24);
    expect(() => decodePacket(pkt)).toThrow(/unknown message status 5/);
  });
});

describe('FrameDecoder', () => {
  it('re-assembles any split of a stream of packets into the same packets', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.uint8Array({ maxLength: 64 })), { minLength: 1, maxLength: 8 }),
        fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 20 }),
        (specs, cuts) => {
          const packets = specs.map(([serial, body]) => encodePacket(call(serial), (w) => w.opaque(body, 1000)));
          const stream = Buffer.concat(packets);
          const dec = new FrameDecoder();
          const out = [];
          let pos = 0;
          let i = 0;
          while (pos < stream.length) {
            const n = cuts[i++ % cuts.length] ?? 1;
            out.push(...dec.push(stream.subarray(pos, pos + n)));
            pos += n;
          }
          expect(dec.pending).toBe(0);
          expect(out.map((p) => p.header.serial)).toEqual(specs.map(([s]) => s));
          expect(out.map((p) => [...new XdrReader(p.payload).opaque(1000)])).toEqual(specs.map(([, b]) => [...b]));
        },
      ),
    );
  });

  it('rejects an oversized length from the first four bytes and stays poisoned', () => {
    const dec = new FrameDecoder();
    const big = Buffer.alloc(4);
    big.writeUInt32BE(MAX_PACKET_LENGTH + 1);
    expect(() => dec.push(big)).toThrow(LibvirtProtocolError);
    expect(() => dec.push(encodePacket(call(1)))).toThrow(/exceeds the 16777220-byte maximum/);
  });

  it('accepts exactly the maximum declared length without buffering it eagerly', () => {
    const dec = new FrameDecoder();
    const head = Buffer.alloc(4);
    head.writeUInt32BE(MAX_PACKET_LENGTH);
    expect(dec.push(head)).toEqual([]);
    expect(dec.pending).toBe(4);
  });

  it('never throws anything but LibvirtProtocolError on random streams', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const dec = new FrameDecoder();
        try {
          dec.push(Buffer.from(bytes));
        } catch (e) {
          expect(e).toBeInstanceOf(LibvirtProtocolError);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
