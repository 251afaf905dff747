// What a failed Cinder call says: the HTTP status and Cinder's fault code (`itemNotFound`,
// `overLimit`, `badRequest`, …, the key of its fault body), so that callers branch on "no such
// snapshot" or "over quota" instead of matching message text. A call that never got an answer
// (refused, reset, past its deadline) has status null and may be repeated.

export class CinderError extends Error {
  override readonly name = 'CinderError';
  constructor(
    /** e.g. "POST snapshots" */
    readonly operation: string,
    /** null: no answer (connection refused or reset, deadline passed) */
    readonly status: number | null,
    /** the key of Cinder's fault body ("itemNotFound"), null when the body had none */
    readonly fault: string | null,
    /** Cinder's message, or what went wrong on the way */
    readonly detail: string,
  ) {
    super(`Cinder ${operation} ${status === null ? 'got no answer' : `answered ${status}${fault === null ? '' : ` ${fault}`}`}: ${detail}`);
  }

  get notFound(): boolean {
    return this.status === 404;
  }

  /** Cinder's quota refusal (413 overLimit, e.g. "Maximum number of snapshots allowed (10) exceeded"). */
  get overLimit(): boolean {
    return this.status === 413;
  }

  /** No answer, or a 5xx/429 (the service or its broker is away): the same call may succeed later. */
  get retryable(): boolean {
    return this.status === null || this.status >= 500 || this.status === 429;
  }
}

/** Cinder answered 2xx with a body we cannot read: the same call answers the same way again. */
export class CinderResponseInvalid extends Error {
  override readonly name = 'CinderResponseInvalid';
  readonly retryable = false;
  constructor(
    readonly operation: string,
    detail: string,
  ) {
    super(`Cinder ${operation}: unexpected response: ${detail}`);
  }
}

/** A fault body is `{"<faultCode>": {"code": <status>, "message": "…"}}`; anything else yields nulls. */
export function parseFault(text: string): { fault: string | null; message: string | null } {
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) {
      const entries = Object.entries(parsed);
      const [key, value] = entries.length === 1 ? (entries[0] ?? []) : [];
      if (typeof key === 'string' && value !== null && typeof value === 'object') {
        const message = (value as { message?: unknown }).message;
        return { fault: key.slice(0, 64), message: typeof message === 'string' ? message.slice(0, 1000) : null };
      }
    }
  } catch {
    // a proxy's or the WSGI server's HTML page: no fault code
  }
  return { fault: null, message: null };
}
