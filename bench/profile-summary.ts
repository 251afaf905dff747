// bench:profile — where a profiled bench's CPU went: reads the V8 CPU profiles `node --cpu-prof`
// wrote (one per thread: the main thread and each worker, e.g. the hash pools) and prints, per
// profile, the time by source room (the project's src/ folders, each npm package, Node's internals,
// GC, idle) and the functions with the most self time. A profile is samples of what ran, so a
// function's self time is the sum of the intervals sampled in it.
// Run: node --cpu-prof --cpu-prof-dir <dir> --import tsx bench/snapshot-e2e.ts -- … ; npm run bench:profile -- --dir <dir>
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { parseArgs } from './support/args';
import { printTable, type Row } from './support/table';

const ArgsSchema = z.object({
  dir: z.string().min(1),
  top: z.coerce.number().int().min(1).max(200).default(25),
});

const CallFrameSchema = z.object({ functionName: z.string(), url: z.string(), lineNumber: z.number() });
const ProfileSchema = z.object({
  nodes: z.array(z.object({ id: z.number(), callFrame: CallFrameSchema })),
  startTime: z.number(),
  endTime: z.number(),
  samples: z.array(z.number()),
  timeDeltas: z.array(z.number()),
});
type Profile = z.infer<typeof ProfileSchema>;
type CallFrame = z.infer<typeof CallFrameSchema>;

/** The room a frame belongs to: src/<room>[/<sub>], an npm package, Node's internals, or V8's pseudo-frames. */
export function roomOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (url === '') return `(${functionName.replace(/[()]/g, '') || 'native'})`;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg?.[1] !== undefined) return pkg[1];
  const src = /\/(src|bench|test)\/(.+)$/.exec(url);
  if (src?.[1] !== undefined && src[2] !== undefined) {
    const parts = src[2].split('/');
    // images/ has rooms of its own (client, service, store)
    const depth = parts[0] === 'images' && parts.length > 2 ? 2 : 1;
    return `${src[1]}/${parts.slice(0, Math.min(depth, parts.length - 1)).join('/') || parts[0]}`;
  }
  if (url.startsWith('node:')) return 'node (internals)';
  return url;
}

function frameName(frame: CallFrame): string {
  const file = frame.url.replace(/^.*\/(src|bench|test|node_modules)\//, '$1/').replace(/^file:\/\//, '');
  return `${frame.functionName || '(anonymous)'} ${file}:${frame.lineNumber + 1}`;
}

/** Self time per node id, ms. */
function selfTimes(profile: Profile): Map<number, number> {
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000));
  return self;
}

function summarize(name: string, profile: Profile, top: number): void {
  const frames = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const wallMs = (profile.endTime - profile.startTime) / 1000;
  const byRoom = new Map<string, number>();
  const byFunction = new Map<string, number>();
  for (const [id, ms] of selfTimes(profile)) {
    const frame = frames.get(id);
    if (frame === undefined) continue;
    byRoom.set(roomOf(frame), (byRoom.get(roomOf(frame)) ?? 0) + ms);
    byFunction.set(frameName(frame), (byFunction.get(frameName(frame)) ?? 0) + ms);
  }
  const busy = [...byRoom].filter(([room]) => room !== '(idle)').reduce((sum, [, ms]) => sum + ms, 0);
  const share = (ms: number): string => `${((100 * ms) / busy).toFixed(1)} %`;
  const rows = (map: Map<string, number>, key: string, n: number): Row[] =>
    [...map]
      .filter(([k]) => k !== '(idle)' && k !== '(idle) ' && !k.startsWith('(idle) '))
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, ms]) => ({ [key]: k, 'self ms': ms.toFixed(0), 'of busy': share(ms) }));
  printTable(`${name}: ${(wallMs / 1000).toFixed(1)} s profiled, ${(busy / 1000).toFixed(1)} s busy (not idle), by room`, rows(byRoom, 'room', top));
  printTable(`${name}: the ${top} functions with the most self time`, rows(byFunction, 'function', top));
}

async function main(): Promise<void> {
  const args = parseArgs(ArgsSchema);
  const files = (await readdir(args.dir)).filter((f) => f.endsWith('.cpuprofile')).sort();
  if (files.length === 0) throw new Error(`no .cpuprofile in ${args.dir}`);
  for (const file of files) {
    const profile = ProfileSchema.parse(JSON.parse(await readFile(join(args.dir, file), 'utf8')));
    summarize(file, profile, args.top);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:profile: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
