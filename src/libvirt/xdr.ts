// XDR (RFC 4506) codec for libvirt's RPC payloads. Every variable-length item is checked against
// a caller-supplied cap AND the bytes actually remaining before anything is allocated, so a
// hostile length field can never make us reserve memory the frame does not contain.
import { LibvirtProtocolError } from './errors';

const INITIAL_CAPACITY = 256;

function pad(n: number): number {
  return (4 - (n % 4)) % 4;
}

export class XdrWriter {
  private buf: Buffer;
  private pos = 0;

  constructor(capacity = INITIAL_CAPACITY) {
    this.buf = Buffer.allocUnsafe(capacity);
  }

  private ensure(extra: number): void {
    if (this.pos + extra <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + extra) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  int32(v: number): this {
    if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) throw new RangeError(`int32 out of range: ${v}`);
    this.ensure(4);
    this.buf.writeInt32BE(v, this.pos);
    this.pos += 4;
    return this;
  }

  uint32(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`uint32 out of range: ${v}`);
    this.ensure(4);
    this.buf.writeUInt32BE(v, this.pos);
    this.pos += 4;
    return this;
  }

  hyper(v: bigint): this {
    this.ensure(8);
    this.buf.writeBigInt64BE(BigInt.asIntN(64, v) === v ? v : rangeFail('hyper', v), this.pos);
    this.pos += 8;
    return this;
  }

  uhyper(v: bigint): this {
    this.ensure(8);
    this.buf.writeBigUInt64BE(BigInt.asUintN(64, v) === v ? v : rangeFail('unsigned hyper', v), this.pos);
    this.pos += 8;
    return this;
  }

  double(v: number): this {
    this.ensure(8);
    this.buf.writeDoubleBE(v, this.pos);
    this.pos += 8;
    return this;
  }

  bool(v: boolean): this {
    return this.int32(v ? 1 : 0);
  }

  /** Fixed-length opaque: exactly `length` bytes, zero padded to a multiple of four. */
  fixedOpaque(data: Uint8Array, length: number): this {
    if (data.length !== length) throw new RangeError(`fixed opaque must be ${length} bytes, got ${data.length}`);
    this.ensure(length + pad(length));
    Buffer.from(data.buffer, data.byteOffset, data.byteLength).copy(this.buf, this.pos);
    this.pos += length;
    this.buf.fill(0, this.pos, this.pos + pad(length));
    this.pos += pad(length);
    return this;
  }

  opaque(data: Uint8Array, max: number): this {
    if (data.length > max) throw new RangeError(`opaque of ${data.length} bytes exceeds limit ${max}`);
    this.uint32(data.length);
    return this.fixedOpaque(data, data.length);
  }

  string(s: string, max: number): this {
    const bytes = Buffer.from(s, 'utf8');
    if (bytes.length > max) throw new RangeError(`string of ${bytes.length} bytes exceeds limit ${max}`);
    return this.opaque(bytes, max);
  }

  /** XDR optional-data (`type *name`): a boolean discriminant followed by the value when present. */
  optional<T>(v: T | null | undefined, write: (w: this, value: T) => void): this {
    if (v === null || v === undefined) return this.bool(false);
    this.bool(true);
    write(this, v);
    return this;
  }

  array<T>(items: readonly T[], max: number, write: (w: this, item: T) => void): this {
    if (items.length > max) throw new RangeError(`array of ${items.length} items exceeds limit ${max}`);
    this.uint32(items.length);
    for (const item of items) write(this, item);
    return this;
  }

  get length(): number {
    return this.pos;
  }

  /** Writes a big-endian uint32 at an earlier position (used to back-patch the frame length). */
  patchUint32(offset: number, v: number): void {
    this.buf.writeUInt32BE(v, offset);
  }

  finish(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

function rangeFail(kind: string, v: bigint): never {
  throw new RangeError(`${kind} out of range: ${v}`);
}

export class XdrReader {
  private pos: number;

  constructor(
    private readonly buf: Buffer,
    start = 0,
  ) {
    this.pos = start;
  }

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  private need(n: number, what: string): void {
    if (n > this.remaining) {
      throw new LibvirtProtocolError(`truncated XDR data: ${what} needs ${n} bytes at offset ${this.pos}, only ${this.remaining} left`);
    }
  }

  int32(): number {
    this.need(4, 'int');
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  uint32(): number {
    this.need(4, 'unsigned int');
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  hyper(): bigint {
    this.need(8, 'hyper');
    const v = this.buf.readBigInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  uhyper(): bigint {
    this.need(8, 'unsigned hyper');
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  /** An unsigned hyper that the API exposes as a JS number; refuses values that would lose precision. */
  uhyperNumber(): number {
    const v = this.uhyper();
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new LibvirtProtocolError(`unsigned hyper ${v} exceeds the safe integer range`);
    return Number(v);
  }

  double(): number {
    this.need(8, 'double');
    const v = this.buf.readDoubleBE(this.pos);
    this.pos += 8;
    return v;
  }

  bool(): boolean {
    const v = this.int32();
    if (v !== 0 && v !== 1) throw new LibvirtProtocolError(`invalid XDR boolean ${v}`);
    return v === 1;
  }

  fixedOpaque(length: number): Buffer {
    this.need(length + pad(length), 'fixed opaque');
    const out = Buffer.from(this.buf.subarray(this.pos, this.pos + length));
    this.pos += length + pad(length);
    return out;
  }

  opaque(max: number): Buffer {
    const len = this.uint32();
    if (len > max) throw new LibvirtProtocolError(`opaque length ${len} exceeds limit ${max}`);
    return this.fixedOpaque(len);
  }

  string(max: number): string {
    const len = this.uint32();
    if (len > max) throw new LibvirtProtocolError(`string length ${len} exceeds limit ${max}`);
    this.need(len + pad(len), 'string');
    const s = this.buf.toString('utf8', this.pos, this.pos + len);
    this.pos += len + pad(len);
    return s;
  }

  optional<T>(read: (r: this) => T): T | null {
    return this.bool() ? read(this) : null;
  }

  /** `minItemBytes` lets the count be checked against the remaining bytes before the loop allocates. */
  array<T>(max: number, minItemBytes: number, read: (r: this) => T): T[] {
    const count = this.uint32();
    if (count > max) throw new LibvirtProtocolError(`array length ${count} exceeds limit ${max}`);
    if (count * minItemBytes > this.remaining) {
      throw new LibvirtProtocolError(`array length ${count} cannot fit in the ${this.remaining} bytes left`);
    }
    const out: T[] = [];
    for (let i = 0; i < count; i++) out.push(read(this));
    return out;
  }

  /** Payloads must be consumed exactly; trailing bytes mean we and the peer disagree on the layout. */
  end(): void {
    if (this.remaining !== 0) throw new LibvirtProtocolError(`${this.remaining} unexpected trailing bytes in XDR payload`);
  }
}
