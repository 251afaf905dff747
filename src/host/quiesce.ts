// Quiesce through the guest agent, for the instant a point-in-time copy is cut. A snapshot never
// waits on, nor fails for, an agent that is absent or hung: the freeze is bounded, a thaw is always
// tried after a failed freeze (the freeze may have landed even though its answer did not, LP#1754360),
// and the copy goes on crash-consistent and says so. The agent's error text is the guest's: it is
// bounded before it reaches the result, the logs or a failure.
import { boundedGuestText, LibvirtError, type Domain, type Libvirt } from '../libvirt';
import { errorMessage } from '../contract';

export interface QuiesceOutcome {
  /** the guest's filesystems were frozen while the copy was cut */
  quiesced: boolean;
  /** freeze answered → thaw answered, in ms; null when nothing was frozen */
  freezeWindowMs: number | null;
  /** why the copy is crash-consistent (the agent's or the timeout's message) */
  quiesceError?: string;
}

export interface QuiesceOptions {
  /** bound on the freeze call and on each thaw attempt */
  timeoutMs: number;
  /** thaw attempts after a freeze (or a failed one), with backoff between them */
  thawAttempts?: number;
  log?: (message: string, fields: Record<string, unknown>) => void;
  /** the image asks for a quiesced copy (`os_require_quiesce`): no freeze, no cut */
  requireQuiesce?: boolean;
}

/** The image requires quiesce (`os_require_quiesce`) and the agent could not freeze: nothing was cut. */
export class QuiesceRequired extends Error {
  override readonly name = 'QuiesceRequired';
  readonly retryable = false;
  constructor(readonly quiesceError: string) {
    super(`the image requires a quiesced snapshot and the guest could not be frozen: ${quiesceError}`);
  }
}

function describe(err: unknown): string {
  if (err instanceof LibvirtError) return `${boundedGuestText(err.message)} (libvirt error ${err.code})`;
  return boundedGuestText(errorMessage(err));
}

/**
 * A failed thaw as it may leave this module. Only the daemon's LibvirtError carries agent text: it
 * becomes the same error (code and retry verdict kept) with the text bounded and the str fields
 * dropped, and not the raw error as its cause, which Temporal would carry into the history whole.
 * The client's own errors (timeout, lost connection) hold no guest text and pass unchanged.
 */
function boundedFailure(err: unknown): unknown {
  if (!(err instanceof LibvirtError)) return err;
  const { code, domain, level } = err;
  return new LibvirtError({ code, domain, level, message: boundedGuestText(err.message), str1: null, str2: null, str3: null, int1: 0, int2: 0 }, err.procedure);
}

export async function thaw(client: Libvirt, dom: Domain, options: QuiesceOptions): Promise<void> {
  const attempts = options.thawAttempts ?? 5;
  let lastError: unknown;
  for (let attempt = 0; attempt < attempts; attempt++) {
    try {
      await client.domainFSThaw(dom, [], 0, { timeoutMs: options.timeoutMs });
      return;
    } catch (err) {
      lastError = err;
      if (attempt + 1 < attempts) await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
    }
  }
  throw lastError;
}

/**
 * Runs `cut` with the guest's filesystems frozen when the agent can freeze them, else without.
 * The guest is thawed before this returns, whether `cut` succeeded or not.
 */
export async function withQuiescedGuest<T>(client: Libvirt, dom: Domain, options: QuiesceOptions, cut: () => Promise<T>): Promise<{ value: T; quiesce: QuiesceOutcome }> {
  let frozenAt: number | null = null;
  let quiesceError: string | undefined;
  try {
    await client.domainFSFreeze(dom, [], 0, { timeoutMs: options.timeoutMs });
    frozenAt = Date.now();
  } catch (err) {
    quiesceError = describe(err);
    options.log?.('guest filesystems not frozen: the copy is crash-consistent', { error: quiesceError });
    // A thaw of filesystems that are not frozen is harmless; one that were frozen must not be skipped.
    await thaw(client, dom, { ...options, thawAttempts: 1 }).catch(() => undefined);
    if (options.requireQuiesce === true) throw new QuiesceRequired(quiesceError);
  }
  let value: T;
  try {
    value = await cut();
  } finally {
    if (frozenAt !== null) {
      await thaw(client, dom, options).catch((err: unknown) => {
        options.log?.('guest filesystems may still be frozen: thaw failed', { error: describe(err) });
        throw boundedFailure(err);
      });
    }
  }
  const freezeWindowMs = frozenAt === null ? null : Date.now() - frozenAt;
  return { value, quiesce: { quiesced: frozenAt !== null, freezeWindowMs, ...(quiesceError ? { quiesceError } : {}) } };
}
