// The fault matrix core's volume-backed cells in every `npm test` (Nova's snapshot_volume_backed
// through a real Cinder on a real single-node Ceph, one Ceph and one Cinder for the file): a real
// writing guest booting from its Cinder volume, and
// - cinder-volume stopped as the create calls go out, away past the freeze's bound: Cinder never
//   takes the snapshot while the guest is frozen, so the guest is thawed and the run fails with
//   SnapshotsNotTakenInFreeze, and its compensation waits for the snapshot to leave `creating`
//   (Cinder refuses to delete it before) and deletes it once cinder-volume is back;
// - the host worker killed with SIGKILL after its create calls, before it reported them: the retried
//   step finds the run's snapshot by its tag and makes no second one; the run completes;
// - Cinder answering 413 to the create call (the project's snapshot quota set full after the plan's
//   check): the run fails with Nova's SnapshotQuotaExceeded.
// Each ends with nothing of the run orphaned in Cinder or the image service, the snapshot usage
// back where it was (or one more, for the completed run's image), and the guest writing on.
// The other volume cells (cinder-volume back in time, RabbitMQ, a hung cinder-volume, the plan's
// quota check, the control worker, a hung agent) are `npm run faults`'s.
import { describeFaultCells } from '../../support/fault-suite';
import { VOLUME_STACK_ENV } from '../../support/volume-fault-cell';
import { useVolumeGuests } from '../../support/volume-guest';

const volumes = useVolumeGuests();

describeFaultCells(
  'fault matrix core, volume-backed: the deadline, a host worker kill -9 and Cinder\'s 413 end defined with nothing orphaned',
  [
    { fault: 'cinder-volume-deadline', step: 'snapshot_volumes', mode: 'live', expected: 'failed' },
    { fault: 'volume-host-kill', step: 'snapshot_volumes_done', mode: 'live', expected: 'completed' },
    { fault: 'snapshot-quota-413', step: 'snapshot_volumes', mode: 'live', expected: 'failed' },
  ],
  () => ({ volumes: volumes(), ...VOLUME_STACK_ENV }),
);
