// Reconciler configuration and loop: defaults, refusals naming the variable, one pass at start,
// a pass never overlapping another, and a failed pass not stopping the loop.
import pino from 'pino';
import { InvalidReconcileConfig, reconcileConfigFromEnv, startReconcileLoop, type ReconcileReport } from '../../../src/reconciler';

const empty: ReconcileReport = { resetInstances: [], deletedImages: [], skipped: [], deletedSchedules: [], pausedSchedules: [], durationMs: 0 };
const log = pino({ level: 'silent' });

describe('reconcileConfigFromEnv', () => {
  it('defaults to a pass a minute and five minutes of grace', () => {
    expect(reconcileConfigFromEnv({})).toEqual({ intervalMs: 60_000, graceMs: 300_000, enabled: true });
  });

  it('reads the variables', () => {
    expect(reconcileConfigFromEnv({ SNAP_RECONCILE_INTERVAL_S: '5', SNAP_RECONCILE_GRACE_S: '0', SNAP_RECONCILE_ENABLED: 'false' })).toEqual({ intervalMs: 5000, graceMs: 0, enabled: false });
  });

  it.each([
    ['SNAP_RECONCILE_INTERVAL_S', '0'],
    ['SNAP_RECONCILE_INTERVAL_S', 'soon'],
    ['SNAP_RECONCILE_GRACE_S', '-1'],
    ['SNAP_RECONCILE_GRACE_S', '1.5'],
    ['SNAP_RECONCILE_ENABLED', 'yes'],
  ])('refuses %s=%s, naming it', (name, value) => {
    expect(() => reconcileConfigFromEnv({ [name]: value })).toThrow(InvalidReconcileConfig);
    expect(() => reconcileConfigFromEnv({ [name]: value })).toThrow(name);
  });
});

describe('startReconcileLoop', () => {
  it('runs once at start, then every interval, never two passes at once, and survives a failed pass', async () => {
    let running = 0;
    let maxRunning = 0;
    let passes = 0;
    const reconciler = {
      async runOnce(): Promise<ReconcileReport> {
        running += 1;
        maxRunning = Math.max(maxRunning, running);
        passes += 1;
        await new Promise((r) => setTimeout(r, 20));
        running -= 1;
        if (passes === 2) throw new Error('temporal unreachable');
        return empty;
      },
    };
    const loop = startReconcileLoop({ reconciler, intervalMs: 30, log, jitter: 0 });
    await Promise.all([loop.runNow(), loop.runNow()]);
    expect(passes).toBe(1);
    await new Promise((r) => setTimeout(r, 250));
    await loop.stop();
    const seen = passes;
    expect(seen).toBeGreaterThanOrEqual(3);
    expect(maxRunning).toBe(1);
    await new Promise((r) => setTimeout(r, 100));
    expect(passes).toBe(seen);
  });
});
