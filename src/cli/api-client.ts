// The compute API as snapctl uses it: JSON over fetch, Nova fault bodies turned into CliErrors with
// the exit code of their class, connection failures into the network exit code.
import type { z } from 'zod';
import { parseOrThrow } from '../config/validation';
import { CliError, ExitCode, exitCodeForStatus } from './cli-errors';

export interface ApiAnswer {
  status: number;
  json: unknown;
}

function faultMessage(json: unknown): string | undefined {
  if (typeof json !== 'object' || json === null) return undefined;
  for (const value of Object.values(json)) {
    if (typeof value === 'object' && value !== null && 'message' in value && typeof value.message === 'string') return value.message;
  }
  return undefined;
}

/** An answer body checked against the shape snapctl reads; another shape is a server-side fault. */
export function parseAnswer<S extends z.ZodTypeAny>(schema: S, json: unknown): z.output<S> {
  return parseOrThrow(schema, json, (issues) => new CliError(ExitCode.server, `unexpected answer from the API: ${issues}`));
}

export class ComputeApiClient {
  constructor(
    private readonly baseUrl: string,
    private readonly token: string,
  ) {}

  async request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiAnswer> {
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers: { 'X-Auth-Token': this.token, Accept: 'application/json', ...(body === undefined ? {} : { 'Content-Type': 'application/json' }), ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
      throw new CliError(ExitCode.network, `cannot reach the compute API at ${this.baseUrl}${cause}`);
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text.length > 0 ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (res.status >= 400) {
      throw new CliError(exitCodeForStatus(res.status), `${faultMessage(json) ?? (text.slice(0, 200) || res.statusText)} (HTTP ${res.status})`);
    }
    return { status: res.status, json };
  }

  async get(path: string): Promise<unknown> {
    return (await this.request('GET', path)).json;
  }
}
