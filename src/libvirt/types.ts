// Wire encodings of the structs shared by many procedures (remote_nonnull_domain, remote_error,
// remote_typed_param), and the public shapes they map to.
import { LibvirtProtocolError, LibvirtUsageError, type RemoteErrorFields } from './errors';
import { REMOTE_STRING_MAX, TypedParamType, VIR_UUID_BUFLEN } from './protocol';
import type { XdrReader, XdrWriter } from './xdr';

/** A handle to a domain as the daemon identifies it: by name and UUID; `id` is -1 when inactive. */
export interface Domain {
  readonly name: string;
  readonly uuid: string;
  readonly id: number;
}

const UUID_RE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

export function uuidToBytes(uuid: string): Buffer {
  if (!UUID_RE.test(uuid)) throw new LibvirtUsageError(`not a UUID: ${JSON.stringify(uuid)}`);
  return Buffer.from(uuid.replace(/-/g, ''), 'hex');
}

export function uuidFromBytes(bytes: Buffer): string {
  const h = bytes.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export function writeString(w: XdrWriter, s: string): void {
  w.string(s, REMOTE_STRING_MAX);
}

export function readString(r: XdrReader): string {
  return r.string(REMOTE_STRING_MAX);
}

export function writeOptString(w: XdrWriter, s: string | null): void {
  w.optional(s, writeString);
}

export function readOptString(r: XdrReader): string | null {
  return r.optional(readString);
}

export function writeDomain(w: XdrWriter, d: Domain): void {
  writeString(w, d.name);
  w.fixedOpaque(uuidToBytes(d.uuid), VIR_UUID_BUFLEN);
  w.int32(d.id);
}

export function readDomain(r: XdrReader): Domain {
  const name = readString(r);
  const uuid = uuidFromBytes(r.fixedOpaque(VIR_UUID_BUFLEN));
  const id = r.int32();
  return { name, uuid, id };
}

/** Smallest encoding of a remote_nonnull_domain: empty name (4) + uuid (16) + id (4). */
export const DOMAIN_MIN_BYTES = 24;

function skipNetwork(r: XdrReader): void {
  readString(r);
  r.fixedOpaque(VIR_UUID_BUFLEN);
}

export function readRemoteError(r: XdrReader): RemoteErrorFields {
  const code = r.int32();
  const domain = r.int32();
  const message = readOptString(r);
  const level = r.int32();
  r.optional(readDomain);
  const str1 = readOptString(r);
  const str2 = readOptString(r);
  const str3 = readOptString(r);
  const int1 = r.int32();
  const int2 = r.int32();
  r.optional(skipNetwork);
  return { code, domain, message, level, str1, str2, str3, int1, int2 };
}

export function writeRemoteError(w: XdrWriter, e: RemoteErrorFields): void {
  w.int32(e.code).int32(e.domain);
  writeOptString(w, e.message);
  w.int32(e.level);
  w.optional(null, writeDomain);
  writeOptString(w, e.str1);
  writeOptString(w, e.str2);
  writeOptString(w, e.str3);
  w.int32(e.int1).int32(e.int2);
  w.bool(false);
}

export type TypedParamValue =
  | { type: TypedParamType.Int; value: number }
  | { type: TypedParamType.UInt; value: number }
  | { type: TypedParamType.LLong; value: bigint }
  | { type: TypedParamType.ULLong; value: bigint }
  | { type: TypedParamType.Double; value: number }
  | { type: TypedParamType.Boolean; value: boolean }
  | { type: TypedParamType.String; value: string };

export type TypedParam = { field: string } & TypedParamValue;

/** VIR_TYPED_PARAM_FIELD_LENGTH: libvirt rejects longer field names. */
const TYPED_PARAM_FIELD_MAX = 80;

export function writeTypedParam(w: XdrWriter, p: TypedParam): void {
  if (Buffer.byteLength(p.field) >= TYPED_PARAM_FIELD_MAX) throw new LibvirtUsageError(`typed parameter name too long: ${p.field}`);
  writeString(w, p.field);
  w.int32(p.type);
  switch (p.type) {
    case TypedParamType.Int:
      w.int32(p.value);
      break;
    case TypedParamType.UInt:
      w.uint32(p.value);
      break;
    case TypedParamType.LLong:
      w.hyper(p.value);
      break;
    case TypedParamType.ULLong:
      w.uhyper(p.value);
      break;
    case TypedParamType.Double:
      w.double(p.value);
      break;
    case TypedParamType.Boolean:
      w.bool(p.value);
      break;
    case TypedParamType.String:
      writeString(w, p.value);
      break;
  }
}

export function readTypedParam(r: XdrReader): TypedParam {
  const field = readString(r);
  const type = r.int32();
  switch (type) {
    case TypedParamType.Int:
      return { field, type, value: r.int32() };
    case TypedParamType.UInt:
      return { field, type, value: r.uint32() };
    case TypedParamType.LLong:
      return { field, type, value: r.hyper() };
    case TypedParamType.ULLong:
      return { field, type, value: r.uhyper() };
    case TypedParamType.Double:
      return { field, type, value: r.double() };
    case TypedParamType.Boolean:
      return { field, type, value: r.int32() !== 0 };
    case TypedParamType.String:
      return { field, type, value: readString(r) };
    default:
      throw new LibvirtProtocolError(`unknown typed parameter type ${type} for ${field}`);
  }
}
