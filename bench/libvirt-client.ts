// domainGetInfo latency through the project's client vs spawning `virsh dominfo`, and 1 000
// concurrent calls multiplexed on one connection. Prints a table; asserts nothing.
// Run: npx tsx bench/libvirt-client.ts [uri]
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Libvirt } from '../src/libvirt';
import { createInstance, removeInstance } from '../src/testing/instance-lifecycle';

const execFileAsync = promisify(execFile);

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN;
}

function summarize(label: string, samples: number[], extra: Record<string, string> = {}): Record<string, string> {
  const s = [...samples].sort((a, b) => a - b);
  return { benchmark: label, n: String(s.length), 'median ms': quantile(s, 0.5).toFixed(3), 'p99 ms': quantile(s, 0.99).toFixed(3), 'max ms': (s[s.length - 1] ?? NaN).toFixed(3), ...extra };
}

async function time<T>(fn: () => Promise<T>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

async function main(): Promise<void> {
  const uri = process.argv[2] ?? 'qemu:///system';
  const client = await Libvirt.connect(uri);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'snapbench-'));
  const name = `snapbench-${randomBytes(4).toString('hex')}`;
  const instance = await createInstance(client, { name, dir });
  const rows: Array<Record<string, string>> = [];
  try {
    for (let i = 0; i < 50; i++) await client.domainGetInfo(instance.domain); // warm-up
    const seq: number[] = [];
    for (let i = 0; i < 1000; i++) seq.push(await time(() => client.domainGetInfo(instance.domain)));
    rows.push(summarize('client domainGetInfo, sequential', seq));

    const virsh: number[] = [];
    for (let i = 0; i < 50; i++) virsh.push(await time(() => execFileAsync('virsh', ['-c', uri, 'dominfo', name])));
    rows.push(summarize('virsh dominfo process', virsh));

    for (const round of [1, 2, 3]) {
      const lat: number[] = [];
      const wall = await time(() =>
        Promise.all(
          Array.from({ length: 1000 }, async () => {
            lat.push(await time(() => client.domainGetInfo(instance.domain)));
          }),
        ),
      );
      rows.push(summarize(`client 1000 concurrent (round ${round})`, lat, { 'wall ms': wall.toFixed(1), 'calls/s': ((1000 / wall) * 1000).toFixed(0) }));
    }
  } finally {
    await removeInstance(client, instance);
    await rm(dir, { recursive: true, force: true });
    await client.close();
  }
  console.table(rows);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
