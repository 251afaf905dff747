// The tables of bench:snapshot: end to end per method against the floor and Nova's pipeline, the
// engine's steps, the data path alone, and the cold guest's downtime against its parts.
import type { SnapshotResult, SnapshotStep } from '../../src/contract';
import type { FilledGuest } from './filled-guest';
import { median, mib, printTable, ratio, seconds, type Row } from './table';

const COLD_METHODS = ['one-pass cold', 'one-pass cold, saved until read', 'convert cold'] as const;
export type Method = 'one-pass live' | 'block-copy live' | (typeof COLD_METHODS)[number] | 'bare convert + copy' | 'nova-style convert + upload' | 'managedSave + restore';

export interface Sample {
  ms: number;
  size: number;
  steps?: SnapshotResult['steps'];
  /** cold: the guest not running, as polled from outside (bench/support/downtime.ts) */
  downtimeMs?: number;
}

export type Samples = Map<Method, Sample[]>;

const ENGINE_METHODS: Method[] = ['one-pass live', 'block-copy live', ...COLD_METHODS];
const BEFORE_DATA: SnapshotStep[] = ['create_image', 'task_state_image_snapshot', 'power_state', 'notify_start', 'lookup_domain', 'choose_mode'];
const CONTROL_AFTER: SnapshotStep[] = ['task_state_pending_upload', 'task_state_uploading', 'task_state_none', 'notify_end'];
// A live run that keeps a checkpoint closes its export in close_and_retain, together with the retention.
const CLOSE: SnapshotStep[] = ['close_export', 'close_and_retain'];

function stepSum(s: Sample, steps: readonly SnapshotStep[]): number {
  return steps.reduce((sum, step) => sum + (s.steps?.[step] ?? 0), 0);
}

function stepMedian(list: readonly Sample[], steps: readonly SnapshotStep[]): number {
  return median(list.map((s) => stepSum(s, steps)));
}

export function reportSnapshots(samples: Samples, guest: FilledGuest, reps: number): void {
  const med = (m: Method): number => median((samples.get(m) ?? []).map((s) => s.ms));
  const bare = med('bare convert + copy');
  const nova = med('nova-style convert + upload');
  const rows: Row[] = [];
  for (const [method, list] of samples) {
    // No image: its row is in the downtime table.
    if (method === 'managedSave + restore') continue;
    const times = list.map((s) => s.ms);
    rows.push({
      method,
      runs: String(list.length),
      'median s': seconds(median(times)),
      'min s': seconds(Math.min(...times)),
      'max s': seconds(Math.max(...times)),
      'image MiB': mib(median(list.map((s) => s.size))),
      'MiB/s (written data)': (guest.writtenBytes / 1024 ** 2 / (median(times) / 1000)).toFixed(0),
      '÷ bare': ratio(median(times), bare),
      '÷ nova-style': ratio(median(times), nova),
      'qemu-img compare': 'identical',
    });
  }
  const title = `Snapshot of a ${mib(guest.diskBytes)} MiB disk with ${mib(guest.writtenBytes)} MiB written (${mib(guest.baseBytes)} MiB in the base), median of ${reps}`;
  printTable(title, rows);

  const stepRows: Row[] = [];
  for (const method of ENGINE_METHODS) {
    const list = samples.get(method) ?? [];
    if (list.length === 0) continue;
    const sumSteps = (s: Sample): number => Object.values(s.steps ?? {}).reduce((a, b) => a + b, 0);
    // One pass: the data path is the export (extract), the stream (upload) and its close.
    const dataPath = stepMedian(list, ['extract', 'upload', ...CLOSE]);
    stepRows.push({
      method,
      'before data ms': stepMedian(list, BEFORE_DATA).toFixed(0),
      'prepare_cold ms': stepMedian(list, ['prepare_cold']).toFixed(0),
      'extract ms': stepMedian(list, ['extract']).toFixed(0),
      'upload ms': stepMedian(list, ['upload']).toFixed(0),
      'close_export (or close_and_retain) ms': stepMedian(list, CLOSE).toFixed(0),
      'restore_guest ms': stepMedian(list, ['restore_guest']).toFixed(0),
      'task states + notify ms': stepMedian(list, CONTROL_AFTER).toFixed(0),
      'data path ms': dataPath.toFixed(0),
      'data path ÷ bare': ratio(dataPath, bare),
      'end to end ms': median(list.map((s) => s.ms)).toFixed(0),
      'fixed cost ms (end to end − data path − guest steps)': median(list.map((s) => s.ms - stepSum(s, ['extract', 'upload', ...CLOSE, 'prepare_cold', 'restore_guest']))).toFixed(0),
      'outside steps ms': median(list.map((s) => s.ms - sumSteps(s))).toFixed(0),
    });
  }
  printTable('Engine steps (workflow result `steps`, medians)', stepRows);

  const downtimeRows: Row[] = [];
  const downtimes = (m: Method): number[] => (samples.get(m) ?? []).flatMap((s) => (s.downtimeMs !== undefined ? [s.downtimeMs] : []));
  const floor = median(downtimes('managedSave + restore'));
  for (const method of [...COLD_METHODS, 'managedSave + restore'] as const) {
    const down = downtimes(method);
    if (down.length === 0) continue;
    downtimeRows.push({
      method,
      runs: String(down.length),
      'downtime median s': seconds(median(down)),
      'min s': seconds(Math.min(...down)),
      'max s': seconds(Math.max(...down)),
      '− managedSave + restore s (target ≤ 0.5)': method === 'managedSave + restore' ? '' : seconds(median(down) - floor),
      'end to end median s': method === 'managedSave + restore' ? '' : seconds(median((samples.get(method) ?? []).map((s) => s.ms))),
    });
  }
  printTable('Cold snapshot guest downtime (the domain polled every 10 ms: not running → running again; live guests never stop)', downtimeRows);
}
