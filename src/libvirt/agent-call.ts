// Argument rules shared by the guest-agent calls (virDomainQemuAgentCommand and
// virDomainAgentSetResponseTimeout), which take the same timeout encoding, and how the text an
// agent answers may travel on.
import { CONTROL_CHARACTERS } from '../contract';
import { LibvirtUsageError } from './errors';
import { VIR_DOMAIN_QEMU_AGENT_COMMAND_BLOCK, VIR_DOMAIN_QEMU_AGENT_COMMAND_DEFAULT, VIR_DOMAIN_QEMU_AGENT_COMMAND_MIN } from './protocol';
import type { CallOptions } from './rpc';

/** libvirt's deadline for VIR_DOMAIN_QEMU_AGENT_COMMAND_DEFAULT (QEMU_AGENT_WAIT_TIME). */
const AGENT_DEFAULT_TIMEOUT_S = 5;

/**
 * Before the agent's own timeout starts, libvirt may wait for the domain's job lock (30 s) and
 * for guest-sync (5 s, sent twice): an RPC deadline shorter than that would abandon a live call.
 */
const AGENT_CALL_OVERHEAD_S = 45;

/** Most characters of agent text passed on (libvirt's message around the agent's own included). */
export const GUEST_TEXT_MAX_CHARS = 256;

/**
 * An agent's error text as results, notifications, workflow histories and logs may carry it. The
 * guest writes the agent's `desc` and libvirt passes it on verbatim (up to 4 MiB in one
 * remote_error), so it is cut to GUEST_TEXT_MAX_CHARS characters and every run of control
 * characters (line breaks, ANSI escapes) becomes one space.
 */
export function boundedGuestText(text: string): string {
  const plain = text.slice(0, GUEST_TEXT_MAX_CHARS * 4).replace(new RegExp(`(?:${CONTROL_CHARACTERS.source})+`, 'gu'), ' ');
  const chars = [...plain];
  return chars.length <= GUEST_TEXT_MAX_CHARS ? plain : `${chars.slice(0, GUEST_TEXT_MAX_CHARS - 1).join('')}…`;
}

/** Rejected here rather than by the daemon, so a bad value never costs a round trip. */
export function checkAgentTimeout(seconds: number): void {
  if (!Number.isInteger(seconds) || seconds < VIR_DOMAIN_QEMU_AGENT_COMMAND_MIN || seconds > 0x7fffffff) {
    throw new LibvirtUsageError(`agent timeout must be an integer number of seconds >= ${VIR_DOMAIN_QEMU_AGENT_COMMAND_MIN}, got ${seconds}`);
  }
}

/** The RPC deadline for an agent command; BLOCK has no bound, so it keeps the connection's default. */
export function agentCallOptions(timeoutSeconds: number): CallOptions | undefined {
  if (timeoutSeconds === VIR_DOMAIN_QEMU_AGENT_COMMAND_BLOCK) return undefined;
  const agentSeconds = timeoutSeconds === VIR_DOMAIN_QEMU_AGENT_COMMAND_DEFAULT ? AGENT_DEFAULT_TIMEOUT_S : timeoutSeconds;
  return { timeoutMs: (agentSeconds + AGENT_CALL_OVERHEAD_S) * 1000 };
}
