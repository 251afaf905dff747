// The benches' one single-node Ceph: started once, stopped with the bench's clean-ups, and described
// in the facts rows every table of numbers taken on it is printed with.
import { runToolOutput } from '../../src/process/tool-process';
import { startCephCluster, type CephCluster } from '../../src/testing/ceph/ceph-cluster';
import { onCleanup } from './cleanup';
import type { Row } from './table';

export async function startBenchCeph(): Promise<{ cluster: CephCluster; facts: Row[] }> {
  const cluster = await startCephCluster();
  onCleanup('ceph cluster', () => cluster.stop());
  return {
    cluster,
    facts: [
      { fact: 'ceph', value: (await runToolOutput('ceph', ['--version'])).stdout.trim() },
      { fact: 'cluster', value: `1 mon, 1 mgr, 1 OSD (BlueStore in a sparse file), loopback; HEALTH_OK in ${(cluster.startMs / 1000).toFixed(1)} s` },
    ],
  };
}
