import { z } from 'zod';
import { createSnapshotMetrics, startMetricsServer, type MetricsServer, type SnapshotMetrics } from '../observability';

/** SNAP_METRICS_PORT: where this worker serves Prometheus /metrics on loopback; unset = not served. */
const MetricsEnvSchema = z.object({ SNAP_METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional() });

export async function startWorkerMetrics(component: string, labels: Record<string, string> = {}): Promise<{ metrics: SnapshotMetrics; server?: MetricsServer }> {
  const { SNAP_METRICS_PORT: port } = MetricsEnvSchema.parse(process.env);
  const metrics = createSnapshotMetrics({ labels: { component, ...labels }, defaultMetrics: true });
  return { metrics, server: port === undefined ? undefined : await startMetricsServer(metrics.registry, port) };
}
