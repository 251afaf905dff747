// One real Cinder (and its RabbitMQ) per test file that needs it, on that file's Ceph: started in
// beforeAll after the cluster, its start time and memory logged once, stopped in afterAll first.
import type { CephCluster } from '../../src/testing/ceph/ceph-cluster';
import { startCinder, type RunningCinder } from './openstack/cinder';

export function useCinder(ceph: () => CephCluster): () => RunningCinder {
  let cinder: RunningCinder | undefined;
  beforeAll(async () => {
    cinder = await startCinder(ceph());
    const rss = await cinder.rss();
    const mib = (n: number): string => `${Math.round(n / 2 ** 20)} MiB`;
    const s = cinder.startMs;
    process.stderr.write(
      `[cinder] ready in ${s.total} ms (RabbitMQ ${s.rabbitmq} ms, Cinder services ${s.cinder} ms); RSS ${Object.entries(rss).map(([d, n]) => `${d} ${mib(n)}`).join(', ')}, total ${mib(Object.values(rss).reduce((a, b) => a + b, 0))}\n`,
    );
  }, 240_000);
  afterAll(async () => {
    await cinder?.stop();
  }, 30_000);
  return () => {
    if (cinder === undefined) throw new Error('Cinder is not up (beforeAll failed)');
    return cinder;
  };
}
