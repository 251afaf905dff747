// Packet framing for libvirt RPC (src/rpc/virnetprotocol.x): a 4-byte big-endian length that counts
// itself, a 24-byte header, then the XDR payload. The decoder validates the length word before
// buffering a single payload byte, so a peer cannot make us allocate more than one legal frame.
import { LibvirtProtocolError } from './errors';
import { XdrReader, XdrWriter } from './xdr';

/** VIR_NET_MESSAGE_MAX: maximum serialised message, excluding the length word. */
export const VIR_NET_MESSAGE_MAX = 16777216;
export const VIR_NET_MESSAGE_HEADER_MAX = 24;
export const VIR_NET_MESSAGE_PAYLOAD_MAX = 16777192;
export const VIR_NET_MESSAGE_LEN_MAX = 4;
export const VIR_NET_MESSAGE_STRING_MAX = 4194304;
export const MIN_PACKET_LENGTH = VIR_NET_MESSAGE_LEN_MAX + VIR_NET_MESSAGE_HEADER_MAX;
export const MAX_PACKET_LENGTH = VIR_NET_MESSAGE_LEN_MAX + VIR_NET_MESSAGE_MAX;

export enum MessageType {
  Call = 0,
  Reply = 1,
  Message = 2,
  Stream = 3,
  CallWithFds = 4,
  ReplyWithFds = 5,
}

export enum MessageStatus {
  Ok = 0,
  Error = 1,
  Continue = 2,
}

export interface Header {
  program: number;
  version: number;
  procedure: number;
  type: MessageType;
  serial: number;
  status: MessageStatus;
}

export interface Packet {
  header: Header;
  /** The payload only (after the header), ready for an XdrReader. */
  payload: Buffer;
}

export function encodePacket(header: Header, writePayload?: (w: XdrWriter) => void): Buffer {
  const w = new XdrWriter(64);
  w.uint32(0); // length, patched below once the payload size is known
  w.uint32(header.program).uint32(header.version).int32(header.procedure);
  w.int32(header.type).uint32(header.serial).int32(header.status);
  writePayload?.(w);
  if (w.length > MAX_PACKET_LENGTH) throw new RangeError(`message of ${w.length} bytes exceeds VIR_NET_MESSAGE_MAX`);
  w.patchUint32(0, w.length);
  return w.finish();
}

export function decodeHeader(r: XdrReader): Header {
  const program = r.uint32();
  const version = r.uint32();
  const procedure = r.int32();
  const type = r.int32();
  const serial = r.uint32();
  const status = r.int32();
  if (!(type in MessageType)) throw new LibvirtProtocolError(`unknown message type ${type}`);
  if (!(status in MessageStatus)) throw new LibvirtProtocolError(`unknown message status ${status}`);
  return { program, version, procedure, type, serial, status };
}

/** Validates the declared length of a packet; throws before the caller buffers anything. */
export function checkPacketLength(length: number): void {
  if (length < MIN_PACKET_LENGTH) {
    throw new LibvirtProtocolError(`packet length ${length} is shorter than the ${MIN_PACKET_LENGTH}-byte minimum (length word + header)`);
  }
  if (length > MAX_PACKET_LENGTH) {
    throw new LibvirtProtocolError(`packet length ${length} exceeds the ${MAX_PACKET_LENGTH}-byte maximum (VIR_NET_MESSAGE_MAX)`);
  }
}

/** Parses one complete packet (length word included). */
export function decodePacket(frame: Buffer): Packet {
  if (frame.length < VIR_NET_MESSAGE_LEN_MAX) throw new LibvirtProtocolError(`truncated packet: ${frame.length} bytes`);
  const declared = frame.readUInt32BE(0);
  checkPacketLength(declared);
  if (declared !== frame.length) throw new LibvirtProtocolError(`packet declares ${declared} bytes but has ${frame.length}`);
  const r = new XdrReader(frame, VIR_NET_MESSAGE_LEN_MAX);
  const header = decodeHeader(r);
  return { header, payload: frame.subarray(r.offset) };
}

/**
 * Incremental splitter for a byte stream. Chunks arrive at arbitrary boundaries; complete frames
 * come out. After the first protocol error the decoder is poisoned: the stream position is lost.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private expected = -1;
  private failed: LibvirtProtocolError | null = null;

  push(chunk: Buffer): Packet[] {
    if (this.failed) throw this.failed;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const out: Packet[] = [];
    try {
      for (;;) {
        if (this.expected < 0) {
          if (this.buffered < VIR_NET_MESSAGE_LEN_MAX) break;
          const head = this.peek(VIR_NET_MESSAGE_LEN_MAX);
          const length = head.readUInt32BE(0);
          checkPacketLength(length);
          this.expected = length;
        }
        if (this.buffered < this.expected) break;
        const frame = this.take(this.expected);
        this.expected = -1;
        out.push(decodePacket(frame));
      }
    } catch (e) {
      this.failed = e instanceof LibvirtProtocolError ? e : new LibvirtProtocolError(String(e));
      this.chunks = [];
      this.buffered = 0;
      throw this.failed;
    }
    return out;
  }

  /** Bytes of an incomplete frame still waiting: non-zero at EOF means the peer truncated a frame. */
  get pending(): number {
    return this.buffered;
  }

  private peek(n: number): Buffer {
    const first = this.chunks[0];
    if (first && first.length >= n) return first.subarray(0, n);
    const joined = Buffer.concat(this.chunks);
    this.chunks = [joined];
    return joined.subarray(0, n);
  }

  private take(n: number): Buffer {
    const joined = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
    const frame = joined.subarray(0, n);
    const rest = joined.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return frame;
  }
}
