// Fixed newstyle negotiation: greeting, client flags, NBD_OPT_STRUCTURED_REPLY,
// NBD_OPT_SET_META_CONTEXT, then NBD_OPT_GO with NBD_INFO_EXPORT and NBD_INFO_BLOCK_SIZE. The
// outcome is everything transmission needs to know about the export.
import { NbdMetaContextError, NbdOptionError, NbdProtocolError } from './errors';
import type { HandshakeStream, OptionReply } from './handshake-io';
import {
  NBD_CLISERV_MAGIC,
  NBD_DEFAULT_MAX_PAYLOAD,
  NBD_DEFAULT_PREFERRED_BLOCK,
  NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_FLAG_C_NO_ZEROES,
  NBD_FLAG_FIXED_NEWSTYLE,
  NBD_FLAG_NO_ZEROES,
  NBD_INFO_BLOCK_SIZE,
  NBD_INFO_EXPORT,
  NBD_INIT_MAGIC,
  NBD_MAX_MINIMUM_BLOCK,
  NBD_MAX_STRING,
  NBD_OPTS_MAGIC,
  NBD_REP_ACK,
  NBD_REP_ERR_INVALID,
  NBD_REP_ERR_PLATFORM,
  NBD_REP_ERR_POLICY,
  NBD_REP_ERR_UNSUP,
  NBD_REP_FLAG_ERROR,
  NBD_REP_INFO,
  NBD_REP_META_CONTEXT,
  NbdOption,
  optionName,
} from './protocol';

export interface BlockSize {
  minimum: number;
  preferred: number;
  maximum: number;
  /** false: the server sent no NBD_INFO_BLOCK_SIZE and these are the spec's defaults */
  advertised: boolean;
}

export interface HandshakeRequest {
  exportName: string;
  metaContexts: readonly string[];
}

export interface NegotiatedExport {
  exportName: string;
  size: number;
  transmissionFlags: number;
  blockSize: BlockSize;
  structuredReplies: boolean;
  /** context name → the id the server assigned to it */
  contexts: ReadonlyMap<string, number>;
}

/** Bounds on reply counts, so a server cannot keep one option going forever. */
const MAX_META_CONTEXT_REPLIES = 256;
const MAX_INFO_REPLIES = 64;
/** Errors after which asking for structured replies is simply declined, not fatal. */
const DECLINED = new Set([NBD_REP_ERR_UNSUP, NBD_REP_ERR_POLICY, NBD_REP_ERR_PLATFORM, NBD_REP_ERR_INVALID]);

const DEFAULT_BLOCK_SIZE: BlockSize = { minimum: 1, preferred: NBD_DEFAULT_PREFERRED_BLOCK, maximum: NBD_DEFAULT_MAX_PAYLOAD, advertised: false };

export async function negotiate(s: HandshakeStream, req: HandshakeRequest): Promise<NegotiatedExport> {
  const noZeroes = await greet(s);
  const structuredReplies = await askStructuredReplies(s, req.metaContexts.length > 0);
  const contexts = req.metaContexts.length > 0 ? await setMetaContexts(s, req) : new Map<string, number>();
  const go = await optGo(s, req.exportName);
  if (go === 'unsupported') {
    // Only servers older than NBD_OPT_GO get here, and those cannot have honoured meta contexts.
    if (req.metaContexts.length > 0) throw new NbdOptionError(NbdOption.Go, NBD_REP_ERR_UNSUP, undefined, 'metadata contexts need NBD_OPT_GO');
    const legacy = await optExportName(s, req.exportName, noZeroes);
    return { exportName: req.exportName, ...legacy, blockSize: DEFAULT_BLOCK_SIZE, structuredReplies, contexts };
  }
  return { exportName: req.exportName, ...go, structuredReplies, contexts };
}

/** Reads the greeting and answers with client flags; returns whether NO_ZEROES is in force. */
async function greet(s: HandshakeStream): Promise<boolean> {
  const magic = await s.readUint64();
  if (magic !== NBD_INIT_MAGIC) throw new NbdProtocolError(`${s.peer} is not an NBD server: greeting magic 0x${magic.toString(16)}, expected 'NBDMAGIC'`);
  const second = await s.readUint64();
  if (second === NBD_CLISERV_MAGIC) throw new NbdProtocolError(`${s.peer} speaks the oldstyle handshake, which this client does not support`);
  if (second !== NBD_OPTS_MAGIC) throw new NbdProtocolError(`${s.peer} sent 0x${second.toString(16)} after NBDMAGIC, expected 'IHAVEOPT'`);
  const flags = (await s.read(2)).readUInt16BE(0);
  // Without fixed newstyle, an unknown option makes the server hang up instead of answering.
  if ((flags & NBD_FLAG_FIXED_NEWSTYLE) === 0) throw new NbdProtocolError(`${s.peer} does not offer fixed newstyle negotiation (handshake flags 0x${flags.toString(16)})`);
  const noZeroes = (flags & NBD_FLAG_NO_ZEROES) !== 0;
  const clientFlags = Buffer.allocUnsafe(4);
  clientFlags.writeUInt32BE(NBD_FLAG_C_FIXED_NEWSTYLE | (noZeroes ? NBD_FLAG_C_NO_ZEROES : 0), 0);
  s.write(clientFlags);
  return noZeroes;
}

async function askStructuredReplies(s: HandshakeStream, required: boolean): Promise<boolean> {
  s.sendOption(NbdOption.StructuredReply);
  const reply = await s.readOptionReply(NbdOption.StructuredReply);
  if (reply.type === NBD_REP_ACK) return true;
  if (isError(reply.type)) {
    if (required) {
      throw new NbdOptionError(NbdOption.StructuredReply, reply.type, message(reply), 'metadata contexts and block status need structured replies');
    }
    if (DECLINED.has(reply.type)) return false;
    throw new NbdOptionError(NbdOption.StructuredReply, reply.type, message(reply));
  }
  throw unexpected(s, NbdOption.StructuredReply, reply);
}

async function setMetaContexts(s: HandshakeStream, req: HandshakeRequest): Promise<Map<string, number>> {
  const name = Buffer.from(req.exportName, 'utf8');
  const queries = req.metaContexts.map((q) => Buffer.from(q, 'utf8'));
  const parts: Buffer[] = [u32(name.length), name, u32(queries.length)];
  for (const q of queries) parts.push(u32(q.length), q);
  s.sendOption(NbdOption.SetMetaContext, Buffer.concat(parts));

  const granted = new Map<string, number>();
  const ids = new Set<number>();
  for (let replies = 0; ; replies++) {
    if (replies > MAX_META_CONTEXT_REPLIES) throw new NbdProtocolError(`${s.peer} sent more than ${MAX_META_CONTEXT_REPLIES} replies to ${optionName(NbdOption.SetMetaContext)}`);
    const reply = await s.readOptionReply(NbdOption.SetMetaContext);
    if (reply.type === NBD_REP_ACK) break;
    if (isError(reply.type)) throw new NbdOptionError(NbdOption.SetMetaContext, reply.type, message(reply));
    if (reply.type !== NBD_REP_META_CONTEXT) throw unexpected(s, NbdOption.SetMetaContext, reply);
    if (reply.payload.length < 5 || reply.payload.length > 4 + NBD_MAX_STRING) {
      throw new NbdProtocolError(`NBD_REP_META_CONTEXT of ${reply.payload.length} bytes from ${s.peer}: needs a 4-byte id and a 1..${NBD_MAX_STRING}-byte name`);
    }
    const id = reply.payload.readUInt32BE(0);
    const contextName = reply.payload.toString('utf8', 4);
    if (ids.has(id) || granted.has(contextName)) throw new NbdProtocolError(`${s.peer} selected metadata context id ${id} ('${contextName}') twice`);
    ids.add(id);
    granted.set(contextName, id);
  }
  const missing = req.metaContexts.filter((c) => !granted.has(c));
  if (missing.length > 0) throw new NbdMetaContextError(req.exportName, missing, [...granted.keys()]);
  return granted;
}

type GoResult = { size: number; transmissionFlags: number; blockSize: BlockSize };

async function optGo(s: HandshakeStream, exportName: string): Promise<GoResult | 'unsupported'> {
  const name = Buffer.from(exportName, 'utf8');
  const infos = Buffer.allocUnsafe(6);
  infos.writeUInt16BE(2, 0);
  infos.writeUInt16BE(NBD_INFO_EXPORT, 2);
  infos.writeUInt16BE(NBD_INFO_BLOCK_SIZE, 4);
  s.sendOption(NbdOption.Go, Buffer.concat([u32(name.length), name, infos]));

  let exportInfo: { size: number; transmissionFlags: number } | null = null;
  let blockSize: BlockSize = DEFAULT_BLOCK_SIZE;
  for (let replies = 0; ; replies++) {
    if (replies > MAX_INFO_REPLIES) throw new NbdProtocolError(`${s.peer} sent more than ${MAX_INFO_REPLIES} replies to NBD_OPT_GO`);
    const reply = await s.readOptionReply(NbdOption.Go);
    if (reply.type === NBD_REP_ACK) break;
    if (reply.type === NBD_REP_ERR_UNSUP) return 'unsupported';
    if (isError(reply.type)) throw new NbdOptionError(NbdOption.Go, reply.type, message(reply), `export '${exportName}'`);
    if (reply.type !== NBD_REP_INFO) throw unexpected(s, NbdOption.Go, reply);
    if (reply.payload.length < 2) throw new NbdProtocolError(`NBD_REP_INFO of ${reply.payload.length} bytes from ${s.peer}`);
    const info = reply.payload.readUInt16BE(0);
    if (info === NBD_INFO_EXPORT) exportInfo = parseExportInfo(s, reply.payload);
    else if (info === NBD_INFO_BLOCK_SIZE) blockSize = parseBlockSize(s, reply.payload);
    // NBD_INFO_NAME, NBD_INFO_DESCRIPTION and unknown items are ignored, as the spec requires.
  }
  if (!exportInfo) throw new NbdProtocolError(`${s.peer} accepted NBD_OPT_GO without sending NBD_INFO_EXPORT`);
  return { ...exportInfo, blockSize };
}

function parseExportInfo(s: HandshakeStream, p: Buffer): { size: number; transmissionFlags: number } {
  if (p.length !== 12) throw new NbdProtocolError(`NBD_INFO_EXPORT of ${p.length} bytes from ${s.peer}, expected 12`);
  return { size: exportSize(s, p.readBigUInt64BE(2)), transmissionFlags: p.readUInt16BE(10) };
}

function parseBlockSize(s: HandshakeStream, p: Buffer): BlockSize {
  if (p.length !== 14) throw new NbdProtocolError(`NBD_INFO_BLOCK_SIZE of ${p.length} bytes from ${s.peer}, expected 14`);
  const minimum = p.readUInt32BE(2);
  const preferred = p.readUInt32BE(6);
  const maximum = p.readUInt32BE(10);
  const bad = (why: string): NbdProtocolError => new NbdProtocolError(`${s.peer} advertised block sizes ${minimum}/${preferred}/${maximum}: ${why}`);
  if (!isPowerOfTwo(minimum) || minimum > NBD_MAX_MINIMUM_BLOCK) throw bad(`the minimum must be a power of 2 no larger than ${NBD_MAX_MINIMUM_BLOCK}`);
  if (!isPowerOfTwo(preferred) || preferred < Math.max(minimum, 512)) throw bad('the preferred size must be a power of 2, at least the minimum and 512');
  if (maximum < preferred) throw bad('the maximum payload must be at least the preferred size');
  return { minimum, preferred, maximum, advertised: true };
}

/** The pre-NBD_OPT_GO way in: no error reply is possible, a refusing server just hangs up. */
async function optExportName(s: HandshakeStream, exportName: string, noZeroes: boolean): Promise<{ size: number; transmissionFlags: number }> {
  s.sendOption(NbdOption.ExportName, Buffer.from(exportName, 'utf8'));
  const reply = await s.read(noZeroes ? 10 : 134);
  return { size: exportSize(s, reply.readBigUInt64BE(0)), transmissionFlags: reply.readUInt16BE(8) };
}

function exportSize(s: HandshakeStream, size: bigint): number {
  if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw new NbdProtocolError(`${s.peer} advertised an export of ${size} bytes, beyond what this client can address`);
  return Number(size);
}

function isError(type: number): boolean {
  return (type & NBD_REP_FLAG_ERROR) !== 0;
}

function message(reply: OptionReply): string | undefined {
  return reply.payload.length > 0 ? reply.payload.toString('utf8') : undefined;
}

function unexpected(s: HandshakeStream, option: number, reply: OptionReply): NbdProtocolError {
  return new NbdProtocolError(`${s.peer} answered ${optionName(option)} with unexpected reply type ${reply.type}`);
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n, 0);
  return b;
}
