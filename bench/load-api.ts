// bench:load:api — createImage at a fixed rate through the real compute API (loopback, autocannon),
// spread over many instances: latency p50/p99, status classes (zero 5xx expected), and "exactly one
// running snapshot per instance at any time" (sampled during the run, then checked over every run).
// The API, the instance store, Temporal, the workflow, the control activities and the image service
// are all real; the host activities are the API tests' stubs (no guest, real image bytes uploaded),
// because with real guests this would measure libvirt, not the API.
// Run: npm run bench:load:api [-- --rate 200 --duration 60 --instances 1000 --connections 64]
import autocannon from 'autocannon';
import { z } from 'zod';
import { TOKENS, startApiStack } from '../test/support/api-stack';
import { parseArgs } from './support/args';
import { onCleanup, runBench } from './support/cleanup';
import { machineFacts } from './support/machine';
import { mapPool } from './support/pool';
import { checkLedger, startSampler, waitForDrain } from './support/snapshot-ledger';
import { printTable, quantile, seconds, type Row } from './support/table';
import { startBenchTemporal } from './support/temporal';

const ArgsSchema = z.object({
  rate: z.coerce.number().int().min(1).max(5000).default(200),
  duration: z.coerce.number().int().min(1).max(3600).default(60),
  instances: z.coerce.number().int().min(1).max(20_000).default(1000),
  connections: z.coerce.number().int().min(1).max(1000).default(64),
});

function latencyRow(label: string, values: readonly number[]): Row {
  return {
    responses: label,
    count: String(values.length),
    'p50 ms': quantile(values, 0.5).toFixed(1),
    'p99 ms': quantile(values, 0.99).toFixed(1),
    'max ms': quantile(values, 1).toFixed(1),
  };
}

runBench('bench:load:api', async () => {
  const args = parseArgs(ArgsSchema);
  printTable('Machine', await machineFacts());
  await startBenchTemporal();
  const stack = await startApiStack();
  onCleanup('api stack', () => stack.stop());
  const instances = await mapPool(Array.from({ length: args.instances }, (_, i) => i), 16, () => stack.addInstance());
  const paths = instances.map((i) => `/v2.1/servers/${i.uuid}/action`);

  // round-robin over the instances: each one is asked again every instances/rate seconds, so some
  // requests land while that instance's previous snapshot still runs and must get a 409
  let next = 0;
  const byStatus = new Map<number, number[]>();
  const sampler = startSampler(stack.temporal, stack.store, 1000);
  process.stderr.write(`bench:load:api: ${args.rate} createImage/s for ${args.duration} s over ${args.instances} instances…\n`);
  let settle: { resolve: (r: autocannon.Result) => void; reject: (e: Error) => void } | undefined;
  const finished = new Promise<autocannon.Result>((resolve, reject) => (settle = { resolve, reject }));
  const instance = autocannon(
    {
      url: stack.api.url,
      connections: args.connections,
      overallRate: args.rate,
      duration: args.duration,
      timeout: 30,
      requests: [
        {
          method: 'POST',
          headers: { 'X-Auth-Token': TOKENS.demo, 'Content-Type': 'application/json', 'OpenStack-API-Version': 'compute 2.45' },
          body: JSON.stringify({ createImage: { name: 'load', metadata: { bench: 'load-api' } } }),
          setupRequest: (request) => ({ ...request, path: paths[next++ % paths.length] ?? '/' }),
        },
      ],
    },
    (err, result) => (err ? settle?.reject(err) : settle?.resolve(result)),
  );
  onCleanup('autocannon', async () => instance.stop());
  instance.on('response', (_client, status: number, _bytes, ms: number) => {
    const list = byStatus.get(status) ?? [];
    list.push(ms);
    byStatus.set(status, list);
  });
  const result = await finished;
  const drainedStart = Date.now();
  const drained = await waitForDrain(stack.temporal, 180_000);
  const drainMs = Date.now() - drainedStart;
  const sampled = await sampler.stop();
  const ledger = await checkLedger(stack.temporal);
  const images = await stack.imageClient().list();
  const imageStatus = new Map<string, number>();
  for (const image of images) imageStatus.set(image.status, (imageStatus.get(image.status) ?? 0) + 1);

  const all = [...byStatus.values()].flat();
  printTable(`createImage at ${args.rate}/s for ${args.duration} s over ${args.instances} instances (${args.connections} connections, autocannon)`, [
    {
      sent: String(result.requests.sent),
      'achieved req/s': (result.requests.total / args.duration).toFixed(1),
      '2xx': String(result['2xx']),
      '4xx': String(result['4xx']),
      '5xx': String(result['5xx']),
      'errors/timeouts': `${result.errors}/${result.timeouts}`,
      'p50 ms (autocannon)': String(result.latency.p50),
      'p99 ms (autocannon)': String(result.latency.p99),
    },
  ]);
  printTable('Latency by status (per response)', [latencyRow('all', all), ...[...byStatus.entries()].sort(([a], [b]) => a - b).map(([status, v]) => latencyRow(String(status), v))]);
  printTable('One running snapshot per instance', [
    {
      'sampled (1/s) max running per instance': String(sampled.maxRunningPerInstance),
      'max running at once': String(sampled.maxRunningTotal),
      'max task_state set at once': String(sampled.maxTaskStateSet),
      samples: String(sampled.samples),
      'runs (202s)': `${ledger.runs} (${result['2xx']})`,
      'overlapping runs of one instance': String(ledger.overlaps),
      'completed / other / running': `${ledger.completed} / ${ledger.other} / ${ledger.running}`,
      'drain after load s': drained ? seconds(drainMs) : 'not drained in 180 s',
      images: [...imageStatus.entries()].map(([s, n]) => `${n} ${s}`).join(', ') || 'none',
    },
  ]);
  const problems: string[] = [];
  if (result['5xx'] > 0) problems.push(`${result['5xx']} × 5xx`);
  if (sampled.maxRunningPerInstance > 1 || ledger.overlaps > 0) problems.push('two snapshots of one instance overlapped');
  // requests still in flight when autocannon stops are answered but not counted by it: a run may
  // exist for them, so runs may exceed the counted 202s by at most the unanswered requests
  const unanswered = result.requests.sent - result['2xx'] - result['4xx'] - result['5xx'];
  if (ledger.runs < result['2xx'] || ledger.runs > result['2xx'] + Math.max(0, unanswered)) problems.push(`${result['2xx']} accepted (${unanswered} unanswered) but ${ledger.runs} runs`);
  if (problems.length > 0) throw new Error(problems.join('; '));
});
