// Requests in flight: never more than the limit at once; the first failure reaches the caller at its
// next start and at drain, nothing is started after it, and settle waits for what runs.
import { setTimeout as sleep } from 'node:timers/promises';
import { RequestsInFlight } from '../../../src/contract';

describe('requests in flight', () => {
  it('runs at most the limit at once, and drain waits for every one', async () => {
    const requests = new RequestsInFlight(3);
    let running = 0;
    let most = 0;
    let done = 0;
    for (let i = 0; i < 10; i++) {
      await requests.start(async () => {
        most = Math.max(most, ++running);
        await sleep(10);
        running--;
        done++;
      });
    }
    await requests.drain();
    expect({ most, done, running }).toEqual({ most: 3, done: 10, running: 0 });
  });

  it('throws the first failure at the next start and at drain, starts nothing after it, and settles what ran', async () => {
    const requests = new RequestsInFlight(2);
    const started: number[] = [];
    let ended = 0;
    const write = (i: number) => async () => {
      started.push(i);
      await sleep(i === 1 ? 5 : 30);
      ended++;
      if (i === 1) throw new Error('write 1 failed');
    };
    await requests.start(write(0));
    await requests.start(write(1));
    // Waits for a free place: write 1 ends first, failed.
    await expect(requests.start(write(2))).rejects.toThrow('write 1 failed');
    await expect(requests.start(write(3))).rejects.toThrow('write 1 failed');
    await expect(requests.drain()).rejects.toThrow('write 1 failed');
    expect(started).toEqual([0, 1]);
    expect(ended).toBe(2);
    await requests.settle();
  });

  it('refuses a limit below one', () => {
    expect(() => new RequestsInFlight(0)).toThrow(RangeError);
  });

  it('each: one request per item within the limit; a failure starts no more and is thrown only once every started one has ended', async () => {
    const started: number[] = [];
    let running = 0;
    let most = 0;
    let endedAfterThrow = -1;
    const failing = new RequestsInFlight(2).each([0, 1, 2, 3, 4, 5], async (i) => {
      started.push(i);
      most = Math.max(most, ++running);
      await sleep(i === 1 ? 5 : 30);
      running--;
      if (i === 1) throw new Error('chunk 1 failed');
    });
    await expect(failing).rejects.toThrow('chunk 1 failed');
    endedAfterThrow = running;
    expect({ most, endedAfterThrow }).toEqual({ most: 2, endedAfterThrow: 0 });
    expect(started).toEqual([0, 1]);
  });
});
