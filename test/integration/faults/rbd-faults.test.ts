// The fault matrix core's RBD cell in every `npm test`: a real writing guest whose root disk is in a
// real single-node Ceph (Nova's images_type=rbd), snapshotted live (whichever live data path the
// build takes: with Ceph's change tracking on, the run's own RBD snapshot read by qemu-nbd), and its
// host worker killed with SIGKILL with the stream's bytes in flight. A new worker re-reads the disk
// and sends only the chunks the image service lacks (a full snapshot is a named upload: the bytes
// the service received on the retry, against the image's), and the end state is checked as every cell's is, plus the
// cluster (rbdLeftovers): of ours only the RBD snapshot the newest chain row records, no image in
// the pools but the disk. The OSD and mon
// cells are `npm run faults`'s.
import { describeFaultCells } from '../../support/fault-suite';
import { RBD_STREAM_LIMIT_MIBS } from '../../support/fault-cell';
import { useRbdGuests } from '../../support/rbd-guest';

const rbd = useRbdGuests();

describeFaultCells(
  'fault matrix core on RBD: the host worker killed mid-stream ends completed with nothing left behind',
  [{ fault: 'rbd-host-kill', step: 'upload', mode: 'live', expected: 'completed' }],
  () => ({ rbd: rbd(), hostEnv: { SNAP_STREAM_BWLIMIT_MIBS: String(RBD_STREAM_LIMIT_MIBS) } }),
);
