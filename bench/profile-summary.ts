// bench:profile — where a profiled bench's CPU went: reads the V8 CPU profiles `node --cpu-prof`
// wrote (one per thread: the main thread and each worker, e.g. the hash pools) and prints, per
// profile, the time by source room (the project's src/ folders, each npm package, Node's internals,
// GC, idle) and the functions with the most self time. A profile is samples of what ran, so a
// function's self time is the sum of the intervals sampled in it.
// Run: node --cpu-prof --cpu-prof-dir <dir> --import tsx bench/snapshot-e2e.ts … ; npm run bench:profile -- --dir <dir> [--from s --to s]
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { parseArgs } from './support/args';
import { printTable, type Row } from './support/table';

const ArgsSchema = z.object({
  dir: z.string().min(1),
  top: z.coerce.number().int().min(1).max(200).default(25),
  /** only the samples this many seconds after the profile's start, and before `to` (e.g. the snapshot's window) */
  from: z.coerce.number().min(0).default(0),
  to: z.coerce.number().min(0).default(Number.POSITIVE_INFINITY),
});

const CallFrameSchema = z.object({ functionName: z.string(), url: z.string(), lineNumber: z.number() });
const ProfileSchema = z.object({
  nodes: z.array(z.object({ id: z.number(), callFrame: CallFrameSchema, children: z.array(z.number()).optional() })),
  startTime: z.number(),
  endTime: z.number(),
  samples: z.array(z.number()),
  timeDeltas: z.array(z.number()),
});
type Profile = z.infer<typeof ProfileSchema>;
type CallFrame = z.infer<typeof CallFrameSchema>;

/** The profiled checkout's files, as V8 names them (the profile is read from the checkout it was taken in). */
const PROJECT = `${pathToFileURL(process.cwd()).href}/`;

/** A frame's file relative to the checkout (src/…, node_modules/…), or as V8 names it. */
function fileOf(url: string): string {
  return url.startsWith(PROJECT) ? url.slice(PROJECT.length) : url;
}

/** The room a frame belongs to: src/<room> (src/images/<room>), an npm package, Node's internals, or V8's pseudo-frames. */
export function roomOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (url === '') return `(${functionName.replace(/[()]/g, '') || 'native'})`;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg?.[1] !== undefined) return pkg[1];
  if (url.startsWith('node:')) return 'node (internals)';
  const parts = fileOf(url).split('/');
  // images/ has rooms of its own (client, service, store)
  const depth = parts[1] === 'images' && parts.length > 3 ? 3 : 2;
  return parts.length > depth ? parts.slice(0, depth).join('/') : parts.join('/');
}

function frameName(frame: CallFrame): string {
  return `${frame.functionName || '(anonymous)'} ${fileOf(frame.url).replace(/^.*node_modules\//, '')}:${frame.lineNumber + 1}`;
}

interface Window {
  fromMs: number;
  toMs: number;
}

/** Self time per node id, ms, of the samples inside the window (ms after the profile's start). */
function selfTimes(profile: Profile, window: Window): Map<number, number> {
  const self = new Map<number, number>();
  let at = 0;
  profile.samples.forEach((id, i) => {
    const delta = (profile.timeDeltas[i] ?? 0) / 1000;
    at += delta;
    if (at >= window.fromMs && at < window.toMs) self.set(id, (self.get(id) ?? 0) + delta);
  });
  return self;
}

/** The nearest frame up the stack that is the project's own code (not a package, not Node's): who asked for the work. */
function projectCallers(profile: Profile): Map<number, CallFrame> {
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const child of n.children ?? []) parent.set(child, n.id);
  const frames = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const own = (f: CallFrame): boolean => f.url.startsWith(PROJECT) && !f.url.includes('/node_modules/');
  const out = new Map<number, CallFrame>();
  for (const n of profile.nodes) {
    for (let id: number | undefined = n.id; id !== undefined; id = parent.get(id)) {
      const frame = frames.get(id);
      if (frame !== undefined && own(frame)) {
        out.set(n.id, frame);
        break;
      }
    }
  }
  return out;
}

function summarize(name: string, profile: Profile, top: number, window: Window): void {
  const frames = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const callers = projectCallers(profile);
  const wallMs = Math.min((profile.endTime - profile.startTime) / 1000, window.toMs) - window.fromMs;
  const byRoom = new Map<string, number>();
  const byFunction = new Map<string, number>();
  const byCaller = new Map<string, number>();
  const add = (map: Map<string, number>, key: string, ms: number): void => {
    map.set(key, (map.get(key) ?? 0) + ms);
  };
  for (const [id, ms] of selfTimes(profile, window)) {
    const frame = frames.get(id);
    if (frame === undefined) continue;
    add(byRoom, roomOf(frame), ms);
    add(byFunction, frameName(frame), ms);
    const caller = callers.get(id);
    // GC and idle have no stack: they stay under their own names.
    add(byCaller, caller !== undefined ? frameName(caller) : frameName(frame), ms);
  }
  const busy = [...byRoom].filter(([room]) => room !== '(idle)').reduce((sum, [, ms]) => sum + ms, 0);
  const share = (ms: number): string => `${((100 * ms) / busy).toFixed(1)} %`;
  const rows = (map: Map<string, number>, key: string, n: number): Row[] =>
    [...map]
      .filter(([k]) => !k.startsWith('(idle)'))
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, ms]) => ({ [key]: k, 'self ms': ms.toFixed(0), 'of busy': share(ms) }));
  printTable(`${name}: ${(wallMs / 1000).toFixed(1)} s profiled, ${(busy / 1000).toFixed(1)} s busy (not idle), by room`, rows(byRoom, 'room', top));
  printTable(`${name}: the ${top} functions with the most self time`, rows(byFunction, 'function', top));
  printTable(`${name}: self time by the nearest project function on the stack (who asked for it)`, rows(byCaller, 'project function', top));
}

async function main(): Promise<void> {
  const args = parseArgs(ArgsSchema);
  const files = (await readdir(args.dir)).filter((f) => f.endsWith('.cpuprofile')).sort();
  if (files.length === 0) throw new Error(`no .cpuprofile in ${args.dir}`);
  for (const file of files) {
    const profile = ProfileSchema.parse(JSON.parse(await readFile(join(args.dir, file), 'utf8')));
    summarize(file, profile, args.top, { fromMs: args.from * 1000, toMs: args.to * 1000 });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:profile: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
