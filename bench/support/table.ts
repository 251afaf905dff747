// Output helpers: Markdown tables (so a run can be pasted into docs/benchmarks.md as is) and the
// order statistics every bench reports.

export type Row = Record<string, string>;

export function printTable(title: string, rows: readonly Row[]): void {
  const first = rows[0];
  if (!first) {
    process.stdout.write(`\n### ${title}\n\n(no rows)\n`);
    return;
  }
  const columns = Object.keys(first);
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;
  const out = [`\n### ${title}\n`, line(columns), line(columns.map(() => '---')), ...rows.map((r) => line(columns.map((c) => r[c] ?? '')))];
  process.stdout.write(`${out.join('\n')}\n`);
}

/** Nearest-rank quantile of unsorted samples. */
export function quantile(samples: readonly number[], q: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? NaN;
}

export function median(samples: readonly number[]): number {
  return quantile(samples, 0.5);
}

export function seconds(ms: number): string {
  return (ms / 1000).toFixed(2);
}

export function mib(bytes: number): string {
  return (bytes / 1024 ** 2).toFixed(1);
}

export function ratio(a: number, b: number): string {
  return b > 0 ? `${(a / b).toFixed(2)}×` : 'n/a';
}

/** Wall time of `fn` in ms, with its result. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = process.hrtime.bigint();
  const value = await fn();
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, value };
}
