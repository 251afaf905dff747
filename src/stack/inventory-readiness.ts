// `npm start` says the stack is up once it can be used: the demo instance answers through the
// compute API, which needs the host worker's first inventory report to have gone through Temporal
// and the control worker into the store. Workers that are slow to start (a loaded machine) are
// waited for here, not discovered by the user's first request.
import { errorMessage } from '../contract';

export interface InstanceListedOptions {
  timeoutMs: number;
  /** said once when the wait is a long one */
  say(line: string): void;
  stillStarting(): boolean;
}

/** true once GET /v2.1/servers/{uuid} answers 200 with `token`; false at the deadline (or when the stack stops). */
export async function waitForInstanceListed(apiUrl: string, token: string, uuid: string, options: InstanceListedOptions): Promise<boolean> {
  const started = Date.now();
  let told = false;
  let lastAnswer = 'no answer yet';
  while (options.stillStarting()) {
    try {
      const res = await fetch(`${apiUrl}/v2.1/servers/${encodeURIComponent(uuid)}`, { headers: { 'X-Auth-Token': token }, signal: AbortSignal.timeout(10_000) });
      await res.body?.cancel();
      if (res.status === 200) return true;
      lastAnswer = `HTTP ${res.status}`;
    } catch (err) {
      lastAnswer = errorMessage(err);
    }
    const waited = Date.now() - started;
    if (waited > options.timeoutMs) {
      options.say(`the demo instance is not in the inventory after ${Math.round(waited / 1000)} s (the compute API: ${lastAnswer}); see the host and control workers' logs above`);
      return false;
    }
    if (!told && waited > 15_000) {
      options.say('waiting for the host worker to report the demo instance…');
      told = true;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return false;
}
