// The core of the fault matrix in every `npm test`: real processes killed with SIGKILL (host and control workers), a real
// Temporal server restarted on its database, a real guest deleted and a real upload refused. The
// full matrix is `npm run faults`. Each cell checks the whole end state (src of truth: libvirt,
// the store, the image service, the snapshots dir, Temporal visibility), not the workflow's word.
import { describeFaultCells } from '../../support/fault-suite';

describeFaultCells('fault matrix core: every fault ends in a defined state', [
  { fault: 'host-kill', step: 'extract', mode: 'live', expected: 'completed' },
  { fault: 'host-kill', step: 'upload', mode: 'cold-running', expected: 'completed' },
  { fault: 'temporal-restart', step: 'extract', mode: 'cold-paused', expected: 'completed' },
  // the control steps are local activities: one run again by a new control worker finds its own write
  { fault: 'control-kill', step: 'task_state', mode: 'live', expected: 'completed' },
  { fault: 'instance-deleted', step: 'extract', mode: 'cold-running', expected: 'failed' },
  { fault: 'image-5xx', step: 'upload', mode: 'live', expected: 'failed' },
]);
