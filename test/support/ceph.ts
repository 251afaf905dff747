// One single-node Ceph per test file that needs it (src/testing/ceph): started in beforeAll, its
// start time and memory logged once, stopped in afterAll with nothing left behind.
import { startCephCluster, type CephCluster } from '../../src/testing/ceph/ceph-cluster';
import { startRadosGateway, type RadosGateway } from '../../src/testing/ceph/rados-gateway';

/** Registers the cluster's start and stop; the returned getter is valid inside tests. */
export function useCephCluster(): () => CephCluster {
  let cluster: CephCluster | undefined;
  beforeAll(async () => {
    cluster = await startCephCluster();
    const rss = await cluster.rss();
    const mib = (n: number): string => `${Math.round(n / 2 ** 20)} MiB`;
    process.stderr.write(`[ceph] HEALTH_OK in ${cluster.startMs} ms; RSS ${Object.entries(rss).map(([d, n]) => `${d} ${mib(n)}`).join(', ')}\n`);
  }, 120_000);
  afterAll(async () => {
    await cluster?.stop();
  }, 30_000);
  return () => {
    if (cluster === undefined) throw new Error('the Ceph cluster is not up (beforeAll failed)');
    return cluster;
  };
}

/** A single-node Ceph with one RADOS Gateway on it, per test file; the gateway stops before the cluster. */
export function useRadosGateway(): () => RadosGateway {
  let cluster: CephCluster | undefined;
  let gateway: RadosGateway | undefined;
  beforeAll(async () => {
    cluster = await startCephCluster();
    gateway = await startRadosGateway(cluster);
    process.stderr.write(`[ceph] HEALTH_OK in ${cluster.startMs} ms; RADOS Gateway answering ${gateway.startMs} ms later\n`);
  }, 150_000);
  afterAll(async () => {
    await gateway?.stop();
    await cluster?.stop();
  }, 30_000);
  return () => {
    if (gateway === undefined) throw new Error('the RADOS Gateway is not up (beforeAll failed)');
    return gateway;
  };
}
