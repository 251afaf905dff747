// Typed errors. Callers (the snapshot workflow's activities) branch on class and `code`, so the
// distinction between "libvirt said no" and "we could not reach libvirt" must survive intact.

/** virErrorNumber values the project branches on (libvirt's include/libvirt/virterror.h). */
export const VIR_ERR_OK = 0;
export const VIR_ERR_INTERNAL_ERROR = 1;
export const VIR_ERR_NO_MEMORY = 2;
export const VIR_ERR_NO_SUPPORT = 3;
export const VIR_ERR_NO_CONNECT = 5;
export const VIR_ERR_INVALID_CONN = 6;
export const VIR_ERR_INVALID_DOMAIN = 7;
export const VIR_ERR_INVALID_ARG = 8;
export const VIR_ERR_OPERATION_FAILED = 9;
export const VIR_ERR_XML_ERROR = 27;
export const VIR_ERR_DOM_EXIST = 28;
export const VIR_ERR_OPERATION_DENIED = 29;
export const VIR_ERR_SYSTEM_ERROR = 38;
export const VIR_ERR_RPC = 39;
export const VIR_ERR_NO_DOMAIN = 42;
export const VIR_ERR_AUTH_FAILED = 45;
export const VIR_ERR_OPERATION_INVALID = 55;
export const VIR_ERR_CONFIG_UNSUPPORTED = 67;
export const VIR_ERR_OPERATION_TIMEOUT = 68;
export const VIR_ERR_ARGUMENT_UNSUPPORTED = 74;
export const VIR_ERR_OPERATION_ABORTED = 78;
export const VIR_ERR_BLOCK_COPY_ACTIVE = 83;
export const VIR_ERR_OPERATION_UNSUPPORTED = 84;
export const VIR_ERR_AGENT_UNRESPONSIVE = 86;
export const VIR_ERR_RESOURCE_BUSY = 87;
export const VIR_ERR_ACCESS_DENIED = 88;
export const VIR_ERR_NO_SERVER = 95;
export const VIR_ERR_AGENT_UNSYNCED = 97;
export const VIR_ERR_DEVICE_MISSING = 99;
export const VIR_ERR_INVALID_DOMAIN_CHECKPOINT = 102;
export const VIR_ERR_NO_DOMAIN_CHECKPOINT = 103;
export const VIR_ERR_NO_DOMAIN_BACKUP = 104;
/** a checkpoint's bitmaps cannot be trusted (QEMU saw it in use at a crash): take a full backup */
export const VIR_ERR_CHECKPOINT_INCONSISTENT = 109;

/** virErrorDomain values (where in libvirt the error was raised). */
export const VIR_FROM_NONE = 0;
export const VIR_FROM_RPC = 7;
export const VIR_FROM_QEMU = 10;
export const VIR_FROM_TEST = 12;
export const VIR_FROM_REMOTE = 13;
export const VIR_FROM_STORAGE = 18;
export const VIR_FROM_DOMAIN = 20;

/** virErrorLevel */
export const VIR_ERR_NONE = 0;
export const VIR_ERR_WARNING = 1;
export const VIR_ERR_ERROR = 2;

/** The decoded `remote_error` a daemon sends with a failed reply. */
export interface RemoteErrorFields {
  code: number;
  domain: number;
  message: string | null;
  level: number;
  str1: string | null;
  str2: string | null;
  str3: string | null;
  int1: number;
  int2: number;
}

/** An error reported by libvirt itself: the call reached the daemon and was refused or failed. */
export class LibvirtError extends Error {
  override readonly name = 'LibvirtError';
  readonly code: number;
  readonly domain: number;
  readonly level: number;
  readonly str1: string | null;
  readonly str2: string | null;
  readonly str3: string | null;
  /**
   * Whether asking again can get another answer. "No such domain" stays so (the instance is gone);
   * the rest (a busy domain, a state-change lock held, an operation failed) can pass.
   */
  readonly retryable: boolean;

  constructor(
    fields: RemoteErrorFields,
    readonly procedure?: string,
  ) {
    super(fields.message ?? `libvirt error code ${fields.code}`);
    this.code = fields.code;
    this.domain = fields.domain;
    this.level = fields.level;
    this.str1 = fields.str1;
    this.str2 = fields.str2;
    this.str3 = fields.str3;
    this.retryable = fields.code !== VIR_ERR_NO_DOMAIN;
  }
}

/** The connection to the daemon is gone or could not be made; the call's outcome is unknown. */
export class LibvirtConnectionError extends Error {
  override readonly name: string = 'LibvirtConnectionError';
  readonly retryable = true;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A call got no reply within its deadline. The daemon may still complete it. */
export class LibvirtTimeoutError extends Error {
  override readonly name = 'LibvirtTimeoutError';
  readonly retryable = true;

  constructor(
    readonly procedure: string,
    readonly timeoutMs: number,
  ) {
    super(`libvirt call ${procedure} got no reply within ${timeoutMs} ms`);
  }
}

/** The peer sent bytes that do not form a valid libvirt RPC message; the connection is dropped. */
export class LibvirtProtocolError extends Error {
  override readonly name = 'LibvirtProtocolError';
  /** the connection is dropped with it; the call may succeed on the next one */
  readonly retryable = true;
}

/** Options or arguments rejected before anything was sent. */
export class LibvirtUsageError extends Error {
  override readonly name = 'LibvirtUsageError';
  readonly retryable = false;
}

/** A libvirt answer with one of `codes` (virErrorNumber), or any libvirt answer when none are given. */
export function isLibvirtError(e: unknown, ...codes: readonly number[]): e is LibvirtError {
  return e instanceof LibvirtError && (codes.length === 0 || codes.includes(e.code));
}
