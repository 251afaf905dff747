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
  /** libvirt errors are answers, not transport failures: repeating the same call gets the same answer. */
  readonly retryable = false;

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
  readonly retryable = false;
}

/** Options or arguments rejected before anything was sent. */
export class LibvirtUsageError extends Error {
  override readonly name = 'LibvirtUsageError';
  readonly retryable = false;
}

export function isLibvirtError(e: unknown, code?: number): e is LibvirtError {
  return e instanceof LibvirtError && (code === undefined || e.code === code);
}
