// Prometheus metrics of the snapshot path. Each process owns one registry (no global default
// registry, so tests and several components in one process do not collide on metric names).
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { SnapshotMode } from '../contract';
import { createBackupMetrics, type BackupMetrics } from './backup-metrics';

export interface SnapshotMetrics {
  registry: Registry;
  /** Whole snapshot duration, by live/cold. */
  snapshotDuration: Histogram<'mode'>;
  /** Failed snapshots, by the step that failed. */
  snapshotFailures: Counter<'step'>;
  /** Image bytes sent to the image service. */
  bytesUploaded: Counter<string>;
  /** backups started, completed, failed, rotated and pruned by type; the age of each instance's last good backup and the age its schedule allows */
  backups: BackupMetrics;
  observeSnapshot(mode: SnapshotMode, seconds: number): void;
  countFailure(step: string): void;
  addUploadedBytes(bytes: number): void;
}

export interface MetricsOptions {
  /** Process metrics (CPU, memory, event loop); off in tests to keep them fast and quiet. */
  defaultMetrics?: boolean;
  /** Added to every metric, e.g. { component: 'host-worker', host: 'node1' }. */
  labels?: Record<string, string>;
}

// Snapshots take seconds to hours; buckets from 1 s to 4 h.
const DURATION_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400];

export function createSnapshotMetrics(options: MetricsOptions = {}): SnapshotMetrics {
  const registry = new Registry();
  if (options.labels !== undefined) registry.setDefaultLabels(options.labels);
  if (options.defaultMetrics === true) collectDefaultMetrics({ register: registry });
  const snapshotDuration = new Histogram({
    name: 'snapshot_duration_seconds',
    help: 'Duration of completed instance snapshots',
    labelNames: ['mode'] as const,
    buckets: DURATION_BUCKETS,
    registers: [registry],
  });
  const snapshotFailures = new Counter({
    name: 'snapshot_failures_total',
    help: 'Failed instance snapshots by the step that failed',
    labelNames: ['step'] as const,
    registers: [registry],
  });
  const bytesUploaded = new Counter({
    name: 'snapshot_bytes_uploaded_total',
    help: 'Snapshot image bytes uploaded to the image service',
    registers: [registry],
  });
  return {
    registry,
    snapshotDuration,
    snapshotFailures,
    bytesUploaded,
    backups: createBackupMetrics(registry),
    observeSnapshot: (mode, seconds) => snapshotDuration.observe({ mode }, seconds),
    countFailure: (step) => snapshotFailures.inc({ step }),
    addUploadedBytes: (bytes) => {
      if (bytes > 0) bytesUploaded.inc(bytes);
    },
  };
}
