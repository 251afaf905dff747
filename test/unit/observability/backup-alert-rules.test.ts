// docs/alerts/backups.rules.yml is a Prometheus rule file (groups of recording and alerting rules),
// every metric its expressions name is one the control worker exports (or a rule records), with the
// labels the expressions group by; BackupTooOld compares each instance's age with its own
// schedule's allowance; the example in its header (unscheduled backups) reads known metrics too;
// and the backup metrics count and age as the rules expect.
// `promtool test rules docs/alerts/backups.rules.test.yml` checks the PromQL itself where promtool is installed.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';
import { BACKUP_METRIC_NAMES, createBackupMetrics, createSnapshotMetrics } from '../../../src/observability';
import { Registry } from 'prom-client';

const RuleSchema = z.union([
  z.object({ record: z.string().regex(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/), expr: z.string().min(1), labels: z.record(z.string()).optional() }).strict(),
  z
    .object({
      alert: z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_]*$/),
      expr: z.string().min(1),
      for: z.string().regex(/^[0-9]+[smhdwy]$/).optional(),
      labels: z.record(z.string()).optional(),
      annotations: z.record(z.string()).optional(),
    })
    .strict(),
]);
const RuleFileSchema = z.object({ groups: z.array(z.object({ name: z.string().min(1), rules: z.array(RuleSchema).min(1) }).strict()).min(1) }).strict();

const RULES = join(__dirname, '../../../docs/alerts/backups.rules.yml');
const RULE_TESTS = join(__dirname, '../../../docs/alerts/backups.rules.test.yml');

/** The metric names an expression reads: identifiers outside strings, label lists and braces that are no PromQL word. */
function metricNames(expr: string): string[] {
  const PROMQL = new Set(['min', 'max', 'sum', 'by', 'on', 'group_left', 'unless', 'or', 'and', 'increase', 'vector', 'label_replace']);
  const bare = expr
    .replace(/"[^"]*"/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\b(by|on|group_left)\s*\([^)]*\)/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ');
  return [...new Set(bare.match(/[a-zA-Z_:][a-zA-Z0-9_:]*/g) ?? [])].filter((w) => !PROMQL.has(w));
}

function groupedLabels(expr: string): string[] {
  return [...expr.matchAll(/\b(?:by|on)\s*\(([^)]*)\)/g)].flatMap((m) => (m[1] ?? '').split(',').map((l) => l.trim()).filter((l) => l !== ''));
}

/** The rules the header's commented example shows (an operator's fallback for unscheduled backups). */
function headerExample(text: string): unknown {
  const lines = text.split('\n');
  const from = lines.findIndex((l) => l.startsWith('#   - record:'));
  const rest = from < 0 ? [] : lines.slice(from);
  const end = rest.findIndex((l) => !l.startsWith('#'));
  return parse(rest.slice(0, end < 0 ? rest.length : end).map((l) => l.slice(2)).join('\n'));
}

/** Every name the rules read is exported by the control worker or recorded by one of them. */
async function expectKnownMetrics(rules: z.infer<typeof RuleSchema>[]): Promise<string[]> {
  const recorded = new Set(rules.flatMap((r) => ('record' in r ? [r.record] : [])));
  const exported = new Set((await createSnapshotMetrics().registry.getMetricsAsJSON()).map((m) => m.name));
  const read = rules.flatMap((r) => metricNames(r.expr));
  for (const name of read) expect({ name, known: exported.has(name) || recorded.has(name) }).toEqual({ name, known: true });
  for (const label of rules.flatMap((r) => groupedLabels(r.expr))) expect(['instance_uuid', 'backup_type']).toContain(label);
  return read;
}

it('is a rule file whose expressions read only metrics the control worker exports, grouped by their labels', async () => {
  const text = await readFile(RULES, 'utf8');
  const rules = RuleFileSchema.parse(parse(text)).groups.flatMap((g) => g.rules);
  const read = await expectKnownMetrics(rules);
  expect(read).toEqual(expect.arrayContaining([BACKUP_METRIC_NAMES.lastSuccessAge, BACKUP_METRIC_NAMES.scheduleMaxAge, BACKUP_METRIC_NAMES.failed, BACKUP_METRIC_NAMES.completed]));
  expect(rules.map((r) => ('alert' in r ? r.alert : r.record))).toEqual(['BackupTooOld', 'BackupsFailing']);
  // Each instance and type against its own schedule's allowance, not a per-type one.
  const tooOld = rules.find((r) => 'alert' in r && r.alert === 'BackupTooOld');
  expect(metricNames(tooOld?.expr ?? '')).toEqual([BACKUP_METRIC_NAMES.lastSuccessAge, BACKUP_METRIC_NAMES.scheduleMaxAge]);
  expect([...(tooOld?.expr ?? '').matchAll(/\bon\s*\(([^)]*)\)/g)].map((m) => m[1])).toEqual(['instance_uuid, backup_type']);
  const example = z.array(RuleSchema).parse(headerExample(text));
  expect(example.map((r) => ('alert' in r ? r.alert : r.record))).toEqual(['backup_type:backup_max_age_seconds', 'UnscheduledBackupTooOld']);
  expect(await expectKnownMetrics(example)).toEqual(expect.arrayContaining([BACKUP_METRIC_NAMES.lastSuccessAge, BACKUP_METRIC_NAMES.scheduleMaxAge]));
});

it('comes with a promtool test file that loads it', async () => {
  const tests = z.object({ rule_files: z.array(z.string()), tests: z.array(z.unknown()).min(1) }).passthrough().parse(parse(await readFile(RULE_TESTS, 'utf8')));
  expect(tests.rule_files).toEqual(['backups.rules.yml']);
});

describe('backup metrics', () => {
  it('count by backup_type and age each instance\'s last good backup; a listing replaces what is known', async () => {
    const registry = new Registry();
    let now = Date.parse('2026-01-02T00:00:00Z');
    const backups = createBackupMetrics(registry, () => now);
    backups.count('started', 'daily');
    backups.count('completed', 'daily');
    backups.count('failed', 'weekly');
    backups.countDeleted('rotated', 'daily', 2);
    backups.countDeleted('pruned', 'daily', 0);
    backups.recordSuccess('i1', 'daily', new Date('2026-01-01T00:00:00Z'));
    backups.recordSuccess('i1', 'daily', new Date('2025-12-31T00:00:00Z'));
    now += 60_000;
    const value = async (name: string, labels: Record<string, string>) =>
      (await registry.getSingleMetric(name)?.get())?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value;
    expect(await value(BACKUP_METRIC_NAMES.started, { backup_type: 'daily' })).toBe(1);
    expect(await value(BACKUP_METRIC_NAMES.failed, { backup_type: 'weekly' })).toBe(1);
    expect(await value(BACKUP_METRIC_NAMES.rotated, { backup_type: 'daily' })).toBe(2);
    expect(await value(BACKUP_METRIC_NAMES.pruned, { backup_type: 'daily' })).toBeUndefined();
    expect(await value(BACKUP_METRIC_NAMES.lastSuccessAge, { instance_uuid: 'i1', backup_type: 'daily' })).toBe(86_400 + 60);
    expect(await value(BACKUP_METRIC_NAMES.lastSuccess, { instance_uuid: 'i1' })).toBe(Date.parse('2026-01-01T00:00:00Z') / 1000);
    backups.replaceLastBackups([{ instanceUuid: 'i2', backupType: 'weekly', at: new Date(now - 1000) }]);
    expect(await value(BACKUP_METRIC_NAMES.lastSuccessAge, { instance_uuid: 'i1' })).toBeUndefined();
    expect(await value(BACKUP_METRIC_NAMES.lastSuccessAge, { instance_uuid: 'i2', backup_type: 'weekly' })).toBe(1);
  });
});
