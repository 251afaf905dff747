// The npm start supervisor with real child processes: a service that dies is started again after
// its backoff and says so; one stopped on purpose is not; the backoff grows and is capped.
import { restartDelay, SupervisedService, DEFAULT_BACKOFF } from '../../../src/stack/child-services';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(probe: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(20);
  }
}

describe('supervised services', () => {
  it('backs off 1, 2, 4 … s up to the cap', () => {
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => restartDelay(DEFAULT_BACKOFF, n))).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
  });

  it('restarts a killed service with a new pid and logs both ends; stop() ends it for good', async () => {
    const lines: string[] = [];
    const service = new SupervisedService({ name: 'sleeper', command: process.execPath, args: ['-e', 'setInterval(() => {}, 1000)'] }, process.cwd(), (l) => lines.push(l), {
      initialMs: 50,
      maxMs: 200,
      healthyAfterMs: 60_000,
    });
    service.start();
    const first = service.pid;
    expect(first).toEqual(expect.any(Number));
    process.kill(first ?? -1, 'SIGKILL');
    await until(() => service.restarts === 1 && service.pid !== first);
    expect(lines).toEqual([
      `[stack] sleeper started (pid ${first})`,
      '[stack] sleeper exited unexpectedly (SIGKILL); restarting in 0 s',
      `[stack] sleeper started (pid ${service.pid}, restart 1)`,
    ]);
    const second = service.pid;
    await service.stop(2_000);
    await sleep(200);
    expect(service.restarts).toBe(1);
    expect(() => process.kill(second ?? -1, 0)).toThrow();
  });
});
