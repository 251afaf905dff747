// The ceph room's calls: a command whose JSON answer is checked against what we read of it (zod),
// so a tool of another version that answers differently fails loudly instead of being misread.
import type { z } from 'zod';
import { parseToolJson } from '../process/tool-process';
import { runCeph, type CallOptions, type CephConnection, type CephTool } from './transport';

/** runCeph with `--format json`, its output checked against what we read of it. */
export async function callCeph<S extends z.ZodTypeAny>(conn: CephConnection, tool: CephTool, args: readonly string[], schema: S, options: CallOptions = {}): Promise<z.output<S>> {
  const stdout = await runCeph(conn, tool, [...args, '--format', 'json'], options);
  return parseToolJson(`${tool} ${args[0] ?? ''}`, schema, stdout);
}
