// What the host read from a Ceph cluster: the OSD's own count of the bytes its clients read
// (`op_r_out_bytes` in `ceph tell osd.N perf dump`), before and after a run. It counts every
// client (QEMU's librbd, qemu-img, rbd), so the guest must be idle while a bench measures.
import { z } from 'zod';
import { callCeph } from '../../src/ceph';
import { OSD_ID } from '../../src/testing/ceph/ceph-config';
import type { CephCluster } from '../../src/testing/ceph/ceph-cluster';

const PerfDumpSchema = z.object({ osd: z.object({ op_r_out_bytes: z.number().int().nonnegative() }).passthrough() }).passthrough();

export async function osdBytesRead(cluster: CephCluster): Promise<number> {
  return (await callCeph(cluster.admin, 'ceph', ['tell', `osd.${OSD_ID}`, 'perf', 'dump'], PerfDumpSchema)).osd.op_r_out_bytes;
}
