// Talking to qemu-guest-agent in test and demo guests through libvirt's agent pass-through (our
// own client, no virsh, no shell). Every agent reply is checked with zod, and base64 payloads are
// measured before they are decoded: the guest decides how much it sends, so nothing trusts it.
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import {
  boundedGuestText,
  LibvirtError,
  LibvirtTimeoutError,
  LibvirtUsageError,
  VIR_ERR_AGENT_UNRESPONSIVE,
  VIR_ERR_AGENT_UNSYNCED,
  VIR_ERR_OPERATION_INVALID,
  VIR_ERR_OPERATION_TIMEOUT,
  type CallOptions,
  type Domain,
} from '../../libvirt';

/** The one client call these helpers need, so a stub can stand in for libvirt in unit tests. */
export interface AgentCommandChannel {
  domainQemuAgentCommand(dom: Domain, command: string, timeoutSeconds: number, flags?: number, opts?: CallOptions): Promise<string | null>;
}

/** The agent (or libvirt on its behalf) answered the command with an error; its text, the guest's, bounded. */
export class GuestAgentError extends Error {
  override readonly name = 'GuestAgentError';
  /** The agent's QMP error class (e.g. "GenericError"); null when libvirt passed on only the text. */
  readonly errorClass: string | null;
  readonly description: string;
  constructor(
    readonly command: string,
    errorClass: string | null,
    description: string,
    options?: { cause?: unknown },
  ) {
    const shownClass = errorClass === null ? null : boundedGuestText(errorClass);
    const shown = boundedGuestText(description);
    super(`guest agent command ${command} failed: ${shownClass ? `${shownClass}: ` : ''}${shown}`, options);
    this.errorClass = shownClass;
    this.description = shown;
  }
}

/** A reply that is not the JSON the command defines: the agent and this code disagree. */
export class GuestAgentProtocolError extends Error {
  override readonly name = 'GuestAgentProtocolError';
  constructor(
    readonly command: string,
    detail: string,
  ) {
    super(`guest agent reply to ${command} is unusable: ${detail}`);
  }
}

/** waitForAgent gave up: the agent never answered a ping within the deadline. */
export class GuestAgentUnavailable extends Error {
  override readonly name = 'GuestAgentUnavailable';
  constructor(
    readonly domain: string,
    readonly timeoutMs: number,
    options?: { cause?: unknown },
  ) {
    const why = options?.cause instanceof Error ? ` (last answer: ${options.cause.message})` : '';
    super(`guest agent of ${domain} did not answer within ${timeoutMs} ms${why}`, options);
  }
}

/** A multi-call agent operation (a file read) ran past its deadline. */
export class GuestAgentTimeout extends Error {
  override readonly name = 'GuestAgentTimeout';
  constructor(
    readonly operation: string,
    readonly timeoutMs: number,
  ) {
    super(`${operation} did not finish within ${timeoutMs} ms`);
  }
}

/** Guest data larger than the caller's cap; refused before it is decoded. */
export class GuestOutputTooLarge extends Error {
  override readonly name = 'GuestOutputTooLarge';
  constructor(
    readonly what: string,
    readonly limitBytes: number,
  ) {
    super(`${what} exceeds the ${limitBytes}-byte cap`);
  }
}

export type GuestExecFailure = 'timeout' | 'signal' | 'output-truncated';

/** guest-exec ran, but produced no result the caller can use (it never exited, was killed, or lost output). */
export class GuestExecFailed extends Error {
  override readonly name = 'GuestExecFailed';
  constructor(
    readonly reason: GuestExecFailure,
    readonly path: string,
    readonly pid: number,
    detail: string,
  ) {
    super(`guest-exec of ${path} (pid ${pid}) failed: ${detail}`);
  }
}

// ---- replies ----

/** Lenient Buffer.from would silently drop bad characters; a corrupted payload must fail instead. */
const Base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'not base64');
const AnyObject = z.object({}).passthrough();
const ErrorReply = z.object({ error: z.object({ class: z.string().optional(), desc: z.string().optional() }).passthrough() });
const ExecReturn = z.object({ pid: z.number().int().nonnegative() });
const ExecStatusReturn = z.object({
  exited: z.boolean(),
  exitcode: z.number().int().optional(),
  signal: z.number().int().optional(),
  'out-data': Base64.optional(),
  'err-data': Base64.optional(),
  'out-truncated': z.boolean().optional(),
  'err-truncated': z.boolean().optional(),
});
const FileHandle = z.number().int().nonnegative();
const FileReadReturn = z.object({ count: z.number().int().nonnegative(), 'buf-b64': Base64, eof: z.boolean() });

/** libvirt up to 10.x folds an agent error reply into this message instead of passing the JSON on. */
const LIBVIRT_AGENT_REFUSAL = /unable to execute QEMU agent command '([^']*)'(?:: ([\s\S]*))?/;

function parseReply<S extends z.ZodTypeAny>(command: string, text: string | null, returns: S): z.infer<S> {
  if (text === null) throw new GuestAgentProtocolError(command, 'libvirt returned no reply');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new GuestAgentProtocolError(command, `not JSON: ${boundedGuestText(text)}`);
  }
  const refused = ErrorReply.safeParse(json);
  if (refused.success) throw new GuestAgentError(command, refused.data.error.class ?? null, refused.data.error.desc ?? 'no description');
  const ok = z.object({ return: returns }).safeParse(json);
  if (!ok.success) throw new GuestAgentProtocolError(command, ok.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; '));
  return (ok.data as { return: z.infer<S> }).return;
}

function decodeBase64Capped(b64: string, limitBytes: number, what: string): Buffer {
  const padding = b64.endsWith('==') ? 2 : b64.endsWith('=') ? 1 : 0;
  const decodedLength = Math.floor((b64.length * 3) / 4) - padding;
  if (decodedLength > limitBytes) throw new GuestOutputTooLarge(what, limitBytes);
  return Buffer.from(b64, 'base64');
}

// ---- calls ----

interface CallBudget {
  /** The agent's deadline inside libvirt, in seconds. */
  agentTimeoutS: number;
  /** Our RPC deadline, so the caller's overall deadline holds even when libvirt is slow. */
  rpcTimeoutMs: number;
}

async function agentCall<S extends z.ZodTypeAny>(
  channel: AgentCommandChannel,
  dom: Domain,
  command: string,
  args: Record<string, unknown> | undefined,
  returns: S,
  budget: CallBudget,
): Promise<z.infer<S>> {
  const json = JSON.stringify(args === undefined ? { execute: command } : { execute: command, arguments: args });
  let text: string | null;
  try {
    text = await channel.domainQemuAgentCommand(dom, json, budget.agentTimeoutS, 0, { timeoutMs: budget.rpcTimeoutMs });
  } catch (e) {
    const refusal = e instanceof LibvirtError ? LIBVIRT_AGENT_REFUSAL.exec(e.message) : null;
    if (refusal) throw new GuestAgentError(refusal[1] || command, null, refusal[2] ?? 'no description', { cause: e });
    throw e;
  }
  return parseReply(command, text, returns);
}

/**
 * libvirt waits for guest-sync (up to 5 s, sent twice) before the command's own timeout starts,
 * so a ping's RPC deadline allows for that on top of the ping timeout.
 */
const SYNC_ALLOWANCE_MS = 12_000;
/** Cap on one agent call's own timeout inside a longer operation; polls return at once anyway. */
const MAX_AGENT_CALL_S = 30;

class Deadline {
  private readonly end: number;
  constructor(readonly totalMs: number) {
    this.end = Date.now() + totalMs;
  }
  get remainingMs(): number {
    return Math.max(0, this.end - Date.now());
  }
  budget(agentCapS = MAX_AGENT_CALL_S): CallBudget {
    const agentTimeoutS = Math.max(1, Math.min(agentCapS, Math.ceil(this.remainingMs / 1000)));
    return { agentTimeoutS, rpcTimeoutMs: Math.max(1000, Math.min(this.remainingMs, agentTimeoutS * 1000 + SYNC_ALLOWANCE_MS)) };
  }
}

/** Errors that mean "the agent is not answering yet", as opposed to a fault worth surfacing. */
function isAgentNotReady(e: unknown): boolean {
  if (e instanceof LibvirtTimeoutError) return true;
  if (!(e instanceof LibvirtError)) return false;
  // AGENT_UNRESPONSIVE: not connected, or no reply in time; OPERATION_INVALID: domain not running;
  // OPERATION_TIMEOUT: another job holds the domain. "Not configured" (ARGUMENT_UNSUPPORTED) is
  // left out on purpose: no amount of waiting fixes a domain without an agent channel.
  return [VIR_ERR_AGENT_UNRESPONSIVE, VIR_ERR_AGENT_UNSYNCED, VIR_ERR_OPERATION_INVALID, VIR_ERR_OPERATION_TIMEOUT].includes(e.code);
}

function checkSeconds(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) throw new LibvirtUsageError(`${name} must be a positive integer number of seconds, got ${value}`);
}

async function pingOnce(channel: AgentCommandChannel, dom: Domain, budget: CallBudget): Promise<Error | null> {
  try {
    await agentCall(channel, dom, 'guest-ping', undefined, AnyObject, budget);
    return null;
  } catch (e) {
    if (isAgentNotReady(e)) return e as Error;
    throw e;
  }
}

/** One guest-ping: true when the agent answers, false when it is not connected or not answering in time. */
export async function agentPing(channel: AgentCommandChannel, dom: Domain, timeoutS: number): Promise<boolean> {
  checkSeconds('timeoutS', timeoutS);
  return (await pingOnce(channel, dom, { agentTimeoutS: timeoutS, rpcTimeoutMs: timeoutS * 1000 + SYNC_ALLOWANCE_MS })) === null;
}

const WaitOptionsSchema = z
  .object({
    timeoutMs: z.number().int().positive(),
    pollIntervalMs: z.number().int().positive().default(500),
    /** Per-ping agent timeout; short, because a booting guest answers quickly once qemu-ga is up. */
    pingTimeoutS: z.number().int().positive().default(2),
  })
  .strict();

/** Pings until the agent answers; the agent comes up some seconds after the guest starts booting. */
export async function waitForAgent(
  channel: AgentCommandChannel,
  dom: Domain,
  options: z.input<typeof WaitOptionsSchema>,
): Promise<{ elapsedMs: number; attempts: number }> {
  const opts = parseOptions(WaitOptionsSchema, options);
  const started = Date.now();
  const deadline = new Deadline(opts.timeoutMs);
  let attempts = 0;
  let last: Error | null = null;
  while (deadline.remainingMs > 0) {
    attempts++;
    last = await pingOnce(channel, dom, deadline.budget(opts.pingTimeoutS));
    if (last === null) return { elapsedMs: Date.now() - started, attempts };
    await sleep(Math.min(opts.pollIntervalMs, deadline.remainingMs));
  }
  throw new GuestAgentUnavailable(dom.name, opts.timeoutMs, { cause: last ?? undefined });
}

function parseOptions<S extends z.ZodTypeAny>(schema: S, value: unknown): z.output<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new LibvirtUsageError(`invalid guest agent options: ${parsed.error.message}`);
  return parsed.data as z.output<S>;
}

// ---- guest-exec ----

/** Leaves room under REMOTE_STRING_MAX (4 MiB) for the base64 growth (4/3) and the JSON around it. */
const MAX_INPUT_BYTES = 2 * 1024 * 1024;
const MAX_OUTPUT_CAP_BYTES = 2 * 1024 * 1024;

const ExecOptionsSchema = z
  .object({
    timeoutMs: z.number().int().positive(),
    /** Written to the process's stdin, which is then closed. */
    input: z.union([z.string(), z.instanceof(Buffer)]).optional(),
    /** Per stream (stdout, stderr). */
    maxOutputBytes: z.number().int().positive().max(MAX_OUTPUT_CAP_BYTES).default(1024 * 1024),
    /** First status poll interval; it grows to 500 ms for slow commands. */
    pollIntervalMs: z.number().int().positive().default(20),
  })
  .strict();

const ExecRequestSchema = z.object({ path: z.string().min(1), args: z.array(z.string()) });

export interface GuestExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `path` with `args` as its argv (no shell), waits for it to exit and returns its exit code
 * and captured output. A non-zero exit is a result, not an error; a process that does not exit
 * in time is GuestExecFailed('timeout') and keeps running in the guest (the agent cannot kill it).
 */
export async function guestExec(
  channel: AgentCommandChannel,
  dom: Domain,
  path: string,
  args: readonly string[],
  options: z.input<typeof ExecOptionsSchema>,
): Promise<GuestExecResult> {
  const request = parseOptions(ExecRequestSchema, { path, args });
  const opts = parseOptions(ExecOptionsSchema, options);
  const input = opts.input === undefined ? undefined : Buffer.from(opts.input);
  if (input && input.length > MAX_INPUT_BYTES) throw new LibvirtUsageError(`guest-exec input of ${input.length} bytes exceeds ${MAX_INPUT_BYTES}`);
  const deadline = new Deadline(opts.timeoutMs);
  const execArgs: Record<string, unknown> = { path: request.path, arg: request.args, 'capture-output': true };
  if (input) execArgs['input-data'] = input.toString('base64');
  const { pid } = await agentCall(channel, dom, 'guest-exec', execArgs, ExecReturn, deadline.budget());

  let interval = opts.pollIntervalMs;
  for (;;) {
    if (deadline.remainingMs <= 0) throw new GuestExecFailed('timeout', request.path, pid, `still running after ${opts.timeoutMs} ms`);
    const status = await agentCall(channel, dom, 'guest-exec-status', { pid }, ExecStatusReturn, deadline.budget());
    if (status.exited) return execResult(request.path, pid, status, opts.maxOutputBytes);
    await sleep(Math.min(interval, deadline.remainingMs));
    interval = Math.min(500, interval * 2);
  }
}

function execResult(path: string, pid: number, status: z.infer<typeof ExecStatusReturn>, maxOutputBytes: number): GuestExecResult {
  if (status.exitcode === undefined) {
    if (status.signal !== undefined) throw new GuestExecFailed('signal', path, pid, `killed by signal ${status.signal}`);
    throw new GuestAgentProtocolError('guest-exec-status', `pid ${pid} exited with neither exitcode nor signal`);
  }
  // The agent keeps at most 16 MiB per stream and says so; a cut-off output must not pass as whole.
  if (status['out-truncated'] || status['err-truncated']) throw new GuestExecFailed('output-truncated', path, pid, 'the agent truncated the captured output');
  const stdout = decodeBase64Capped(status['out-data'] ?? '', maxOutputBytes, `stdout of ${path}`);
  const stderr = decodeBase64Capped(status['err-data'] ?? '', maxOutputBytes, `stderr of ${path}`);
  return { exitCode: status.exitcode, stdout: stdout.toString('utf8'), stderr: stderr.toString('utf8') };
}

// ---- guest-file-* ----

const FileReadOptionsSchema = z
  .object({
    timeoutMs: z.number().int().positive().default(30_000),
    maxBytes: z.number().int().positive().max(64 * 1024 * 1024).default(1024 * 1024),
  })
  .strict();

/** Bytes per guest-file-read: its base64 (4/3) stays well under REMOTE_STRING_MAX. */
const READ_CHUNK_BYTES = 256 * 1024;

/** Reads a whole guest file through guest-file-open/read/close; GuestOutputTooLarge past `maxBytes`. */
export async function guestFileRead(
  channel: AgentCommandChannel,
  dom: Domain,
  path: string,
  options: z.input<typeof FileReadOptionsSchema> = {},
): Promise<Buffer> {
  const opts = parseOptions(FileReadOptionsSchema, options);
  if (path.length === 0) throw new LibvirtUsageError('guestFileRead needs a path');
  const deadline = new Deadline(opts.timeoutMs);
  const handle = await agentCall(channel, dom, 'guest-file-open', { path, mode: 'r' }, FileHandle, deadline.budget());
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      if (deadline.remainingMs <= 0) throw new GuestAgentTimeout(`reading guest file ${path}`, opts.timeoutMs);
      // One byte past the cap is enough to know the file is too large, without reading the rest.
      const count = Math.min(READ_CHUNK_BYTES, opts.maxBytes - total + 1);
      const chunk = await agentCall(channel, dom, 'guest-file-read', { handle, count }, FileReadReturn, deadline.budget());
      const data = decodeBase64Capped(chunk['buf-b64'], count, `guest-file-read chunk of ${path}`);
      if (data.length !== chunk.count) throw new GuestAgentProtocolError('guest-file-read', `count ${chunk.count} but ${data.length} bytes of data`);
      total += data.length;
      if (total > opts.maxBytes) throw new GuestOutputTooLarge(`guest file ${path}`, opts.maxBytes);
      chunks.push(data);
      if (chunk.eof || data.length === 0) return Buffer.concat(chunks, total);
    }
  } finally {
    // Best effort: a handle left open costs the agent a file descriptor, not us a wrong result.
    await agentCall(channel, dom, 'guest-file-close', { handle }, AnyObject, deadline.budget()).catch(() => undefined);
  }
}
