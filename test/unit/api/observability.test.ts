// The observability helpers the API and both workers share (kept here: the API is their first user).
import { Writable } from 'node:stream';
import { createLogger, createSnapshotMetrics, snapshotLogger, startMetricsServer } from '../../../src/observability';

describe('snapshot metrics', () => {
  it('exposes duration by mode, failures by step and uploaded bytes on a private registry', async () => {
    const m = createSnapshotMetrics({ labels: { component: 'test' } });
    m.observeSnapshot('live', 12);
    m.observeSnapshot('cold', 400);
    m.countFailure('upload');
    m.addUploadedBytes(1024);
    m.addUploadedBytes(-5);
    const text = await m.registry.metrics();
    expect(text).toMatch(/snapshot_duration_seconds_count\{[^}]*mode="live"[^}]*\} 1/);
    expect(text).toMatch(/snapshot_duration_seconds_bucket\{le="600",[^}]*mode="cold"[^}]*\} 1/);
    expect(text).toMatch(/snapshot_failures_total\{[^}]*step="upload"[^}]*\} 1/);
    expect(text).toMatch(/snapshot_bytes_uploaded_total\{component="test"\} 1024/);
    // A second registry does not collide on names (workers and API in one process).
    expect(() => createSnapshotMetrics()).not.toThrow();
  });

  it('serves /metrics from a standalone server and 404s anything else', async () => {
    const m = createSnapshotMetrics();
    m.countFailure('extract');
    const server = await startMetricsServer(m.registry, 0);
    try {
      const res = await fetch(server.url);
      expect(res.status).toBe(200);
      expect(await res.text()).toContain('snapshot_failures_total{step="extract"} 1');
      expect((await fetch(server.url.replace('/metrics', '/other'))).status).toBe(404);
    } finally {
      await server.close();
    }
  });
});

describe('logger', () => {
  it('writes JSON lines with the snapshot fields and redacts tokens', () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString('utf8'));
        cb();
      },
    });
    const log = createLogger({ name: 'unit', destination });
    snapshotLogger(log, { instanceUuid: 'u1', workflowId: 'snapshot-u1', step: 'upload' }).info({ token: 'secret' }, 'hello');
    const entry = JSON.parse(lines[0] ?? '{}') as Record<string, unknown>;
    expect(entry).toMatchObject({ name: 'unit', msg: 'hello', instance_uuid: 'u1', workflow_id: 'snapshot-u1', step: 'upload', token: '[redacted]' });
  });
});
