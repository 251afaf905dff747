// Numbers from the NBD wire contract (NetworkBlockDevice/nbd doc/proto.md) and QEMU's registered
// `qemu:` metadata namespace. These are the protocol: never renumber.

/** 'NBDMAGIC', the first eight bytes from every server. */
export const NBD_INIT_MAGIC = 0x4e42444d41474943n;
/** 'IHAVEOPT': second greeting word of newstyle servers, and the prefix of every client option. */
export const NBD_OPTS_MAGIC = 0x49484156454f5054n;
/** The second greeting word of an oldstyle server, which this client refuses. */
export const NBD_CLISERV_MAGIC = 0x00420281861253n;
/** Prefix of every option reply in fixed newstyle. */
export const NBD_REP_MAGIC = 0x3e889045565a9n;

export const NBD_REQUEST_MAGIC = 0x25609513;
export const NBD_SIMPLE_REPLY_MAGIC = 0x67446698;
export const NBD_STRUCTURED_REPLY_MAGIC = 0x668e33ef;

// Handshake flags (server, 16 bits) and client flags (32 bits).
export const NBD_FLAG_FIXED_NEWSTYLE = 1 << 0;
export const NBD_FLAG_NO_ZEROES = 1 << 1;
export const NBD_FLAG_C_FIXED_NEWSTYLE = 1 << 0;
export const NBD_FLAG_C_NO_ZEROES = 1 << 1;

/** Transmission flags (16 bits), sent with the export's size. */
export const NBD_FLAG_HAS_FLAGS = 1 << 0;
export const NBD_FLAG_READ_ONLY = 1 << 1;
export const NBD_FLAG_SEND_FLUSH = 1 << 2;
export const NBD_FLAG_SEND_FUA = 1 << 3;
export const NBD_FLAG_ROTATIONAL = 1 << 4;
export const NBD_FLAG_SEND_TRIM = 1 << 5;
export const NBD_FLAG_SEND_WRITE_ZEROES = 1 << 6;
export const NBD_FLAG_SEND_DF = 1 << 7;
export const NBD_FLAG_CAN_MULTI_CONN = 1 << 8;

export enum NbdOption {
  ExportName = 1,
  Abort = 2,
  List = 3,
  StartTls = 5,
  Info = 6,
  Go = 7,
  StructuredReply = 8,
  ListMetaContext = 9,
  SetMetaContext = 10,
}

export function optionName(option: number): string {
  const name = NbdOption[option];
  return name === undefined ? `option ${option}` : `NBD_OPT_${snake(name)}`;
}

/** Option reply types; errors have bit 31 set. */
export const NBD_REP_ACK = 1;
export const NBD_REP_SERVER = 2;
export const NBD_REP_INFO = 3;
export const NBD_REP_META_CONTEXT = 4;
export const NBD_REP_FLAG_ERROR = 0x80000000;
export const NBD_REP_ERR_UNSUP = 0x80000001;
export const NBD_REP_ERR_POLICY = 0x80000002;
export const NBD_REP_ERR_INVALID = 0x80000003;
export const NBD_REP_ERR_PLATFORM = 0x80000004;
export const NBD_REP_ERR_TLS_REQD = 0x80000005;
export const NBD_REP_ERR_UNKNOWN = 0x80000006;
export const NBD_REP_ERR_SHUTDOWN = 0x80000007;
export const NBD_REP_ERR_BLOCK_SIZE_REQD = 0x80000008;
export const NBD_REP_ERR_TOO_BIG = 0x80000009;

const OPTION_REPLY_ERROR_NAMES: Record<number, string> = {
  [NBD_REP_ERR_UNSUP]: 'NBD_REP_ERR_UNSUP',
  [NBD_REP_ERR_POLICY]: 'NBD_REP_ERR_POLICY',
  [NBD_REP_ERR_INVALID]: 'NBD_REP_ERR_INVALID',
  [NBD_REP_ERR_PLATFORM]: 'NBD_REP_ERR_PLATFORM',
  [NBD_REP_ERR_TLS_REQD]: 'NBD_REP_ERR_TLS_REQD',
  [NBD_REP_ERR_UNKNOWN]: 'NBD_REP_ERR_UNKNOWN',
  [NBD_REP_ERR_SHUTDOWN]: 'NBD_REP_ERR_SHUTDOWN',
  [NBD_REP_ERR_BLOCK_SIZE_REQD]: 'NBD_REP_ERR_BLOCK_SIZE_REQD',
  [NBD_REP_ERR_TOO_BIG]: 'NBD_REP_ERR_TOO_BIG',
};

export function optionReplyErrorName(code: number): string {
  return OPTION_REPLY_ERROR_NAMES[code] ?? `NBD_REP_ERR 0x${code.toString(16)}`;
}

/** NBD_INFO_* items asked for in NBD_OPT_GO and answered in NBD_REP_INFO. */
export const NBD_INFO_EXPORT = 0;
export const NBD_INFO_NAME = 1;
export const NBD_INFO_DESCRIPTION = 2;
export const NBD_INFO_BLOCK_SIZE = 3;

export enum NbdCommand {
  Read = 0,
  Write = 1,
  Disc = 2,
  Flush = 3,
  Trim = 4,
  Cache = 5,
  WriteZeroes = 6,
  BlockStatus = 7,
}

export function commandName(command: number): string {
  const name = NbdCommand[command];
  return name === undefined ? `command ${command}` : `NBD_CMD_${snake(name)}`;
}

/** Command flags. */
export const NBD_CMD_FLAG_DF = 1 << 2;
export const NBD_CMD_FLAG_REQ_ONE = 1 << 3;

/** Structured reply flags and chunk types; error chunk types have bit 15 set. */
export const NBD_REPLY_FLAG_DONE = 1 << 0;
export const NBD_REPLY_TYPE_NONE = 0;
export const NBD_REPLY_TYPE_OFFSET_DATA = 1;
export const NBD_REPLY_TYPE_OFFSET_HOLE = 2;
export const NBD_REPLY_TYPE_BLOCK_STATUS = 5;
export const NBD_REPLY_TYPE_FLAG_ERROR = 1 << 15;
export const NBD_REPLY_TYPE_ERROR = NBD_REPLY_TYPE_FLAG_ERROR | 1;
export const NBD_REPLY_TYPE_ERROR_OFFSET = NBD_REPLY_TYPE_FLAG_ERROR | 2;

/** Error values of replies (the spec fixes them to the usual Linux errno numbers). */
export const NBD_EPERM = 1;
export const NBD_EIO = 5;
export const NBD_ENOMEM = 12;
export const NBD_EINVAL = 22;
export const NBD_ENOSPC = 28;
export const NBD_EOVERFLOW = 75;
export const NBD_ENOTSUP = 95;
export const NBD_ESHUTDOWN = 108;

const ERROR_NAMES: Record<number, string> = {
  [NBD_EPERM]: 'EPERM',
  [NBD_EIO]: 'EIO',
  [NBD_ENOMEM]: 'ENOMEM',
  [NBD_EINVAL]: 'EINVAL',
  [NBD_ENOSPC]: 'ENOSPC',
  [NBD_EOVERFLOW]: 'EOVERFLOW',
  [NBD_ENOTSUP]: 'ENOTSUP',
  [NBD_ESHUTDOWN]: 'ESHUTDOWN',
};

export function isKnownErrorCode(code: number): boolean {
  return ERROR_NAMES[code] !== undefined;
}

export function errorCodeName(code: number): string {
  return ERROR_NAMES[code] ?? `error ${code}`;
}

/** base:allocation status flags. */
export const NBD_STATE_HOLE = 1 << 0;
export const NBD_STATE_ZERO = 1 << 1;
/** qemu:dirty-bitmap:<name> status flag. */
export const NBD_STATE_DIRTY = 1 << 0;

export const BASE_ALLOCATION = 'base:allocation';
export const QEMU_DIRTY_BITMAP_PREFIX = 'qemu:dirty-bitmap:';

export function dirtyBitmapContext(bitmap: string): string {
  return `${QEMU_DIRTY_BITMAP_PREFIX}${bitmap}`;
}

// Sizes. A string (export name, context name, error message) MUST be no longer than 4096 bytes.
export const NBD_MAX_STRING = 4096;
/** What the spec says a client may always ask for, and the default request cap. */
export const NBD_DEFAULT_MAX_PAYLOAD = 32 * 1024 * 1024;
export const NBD_DEFAULT_PREFERRED_BLOCK = 4096;
export const NBD_MAX_MINIMUM_BLOCK = 65536;
/** The server SHOULD NOT send more descriptors than this in one block-status chunk. */
export const NBD_MAX_BLOCK_STATUS_DESCRIPTORS = 1 << 20;
/** Request lengths are 32 bits on the wire. */
export const NBD_MAX_REQUEST_LENGTH = 0xffffffff;

/** Wire sizes of fixed headers. */
export const REQUEST_HEADER_BYTES = 28;
export const SIMPLE_REPLY_HEADER_BYTES = 16;
export const STRUCTURED_REPLY_HEADER_BYTES = 20;
export const OPTION_REPLY_HEADER_BYTES = 20;
export const BLOCK_DESCRIPTOR_BYTES = 8;

function snake(name: string): string {
  return name.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase();
}
