// Typed errors. The reader of a guest disk branches on class and code: "the server refused this
// read" (NbdError), "the server would not set up the export" (NbdOptionError), "the peer is broken"
// (NbdProtocolError) and "the connection is gone" (NbdConnectionError) call for different recoveries.
import { commandName, errorCodeName, isKnownErrorCode, NBD_EINVAL, NBD_ESHUTDOWN, NBD_REP_ERR_SHUTDOWN, optionName, optionReplyErrorName } from './protocol';

export interface NbdErrorDetails {
  /** NBD_CMD_* of the failed request */
  command: number;
  offset: number;
  length: number;
  /** the error value on the wire; an unknown one is kept here while `code` reads NBD_EINVAL */
  wireCode: number;
  serverMessage?: string;
  /** from an NBD_REPLY_TYPE_ERROR_OFFSET chunk: where in the request the error lies */
  errorOffset?: number;
}

/** The server answered a request with an error (a simple reply's error field or an error chunk). */
export class NbdError extends Error {
  override readonly name = 'NbdError';
  /** NBD_E* value; the spec tells clients to treat unknown values as NBD_EINVAL */
  readonly code: number;
  readonly wireCode: number;
  readonly command: number;
  readonly offset: number;
  readonly length: number;
  readonly serverMessage: string | undefined;
  readonly errorOffset: number | undefined;
  /** ESHUTDOWN: the export is going away; the same request may pass on a new connection */
  readonly retryable: boolean;

  constructor(d: NbdErrorDetails) {
    const code = isKnownErrorCode(d.wireCode) ? d.wireCode : NBD_EINVAL;
    const where = d.errorOffset === undefined ? '' : ` at offset ${d.errorOffset}`;
    const detail = d.serverMessage ? `: ${d.serverMessage}` : '';
    super(`${commandName(d.command)} of ${d.length} bytes at ${d.offset} failed with ${errorCodeName(d.wireCode)}${where}${detail}`);
    this.code = code;
    this.wireCode = d.wireCode;
    this.command = d.command;
    this.offset = d.offset;
    this.length = d.length;
    this.serverMessage = d.serverMessage;
    this.errorOffset = d.errorOffset;
    this.retryable = code === NBD_ESHUTDOWN;
  }

  get codeName(): string {
    return errorCodeName(this.code);
  }
}

/** The server refused an option during the handshake with an NBD_REP_ERR_* reply. */
export class NbdOptionError extends Error {
  override readonly name = 'NbdOptionError';
  /** NBD_REP_ERR_UNSUP, _POLICY, _INVALID, _PLATFORM, _TLS_REQD, _UNKNOWN, _SHUTDOWN, _BLOCK_SIZE_REQD, _TOO_BIG… */
  readonly code: number;
  readonly option: number;
  readonly serverMessage: string | undefined;
  /** only a server shutting down may say yes later */
  readonly retryable: boolean;

  constructor(option: number, code: number, serverMessage?: string, why?: string) {
    const detail = serverMessage ? `: ${serverMessage}` : '';
    super(`${optionName(option)} refused with ${optionReplyErrorName(code)}${why ? ` (${why})` : ''}${detail}`);
    this.code = code;
    this.option = option;
    this.serverMessage = serverMessage;
    this.retryable = code === NBD_REP_ERR_SHUTDOWN;
  }

  get codeName(): string {
    return optionReplyErrorName(this.code);
  }
}

/** The handshake succeeded but the server did not select every metadata context asked for. */
export class NbdMetaContextError extends Error {
  override readonly name = 'NbdMetaContextError';
  readonly retryable = false;

  constructor(
    readonly exportName: string,
    readonly missing: readonly string[],
    readonly granted: readonly string[],
  ) {
    super(
      `export '${exportName}' has no metadata context ${missing.map((m) => `'${m}'`).join(', ')} ` +
        `(the server selected ${granted.length === 0 ? 'none' : granted.map((g) => `'${g}'`).join(', ')})`,
    );
  }
}

/** The peer sent bytes that break the protocol. The connection is dropped with it. */
export class NbdProtocolError extends Error {
  override readonly name = 'NbdProtocolError';
  /** a new connection may find a sane server (or the same broken one) */
  readonly retryable = true;
}

/** The connection could not be made or is gone; a request's outcome is unknown. */
export class NbdConnectionError extends Error {
  override readonly name: string = 'NbdConnectionError';
  readonly retryable = true;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Nothing came from the server for too long (handshake or outstanding requests). */
export class NbdTimeoutError extends NbdConnectionError {
  override readonly name = 'NbdTimeoutError';

  constructor(
    message: string,
    readonly timeoutMs: number,
  ) {
    super(message);
  }
}

/** Arguments or options rejected before anything was sent. */
export class NbdUsageError extends Error {
  override readonly name = 'NbdUsageError';
  readonly retryable = false;
}

export function isNbdError(e: unknown, code?: number): e is NbdError {
  return e instanceof NbdError && (code === undefined || e.code === code);
}
