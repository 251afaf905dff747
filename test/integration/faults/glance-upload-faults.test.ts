// The fault matrix core's upload cells against a real Glance behind a real Keystone (the workers
// upload as the Keystone service user): Glance cannot resume, so after a host worker's kill -9
// mid-upload the next attempt starts over from byte 0, and a refused upload fails cleanly; in
// both, no partial image is ever left active (the cells' checks read Glance itself).
import { describeFaultCells } from '../../support/fault-suite';

describeFaultCells(
  'fault matrix upload cells on Glance: every fault ends in a defined state',
  [
    { fault: 'host-kill', step: 'upload', mode: 'cold-running', expected: 'completed' },
    { fault: 'image-5xx', step: 'upload', mode: 'live', expected: 'failed' },
  ],
  { imageBackend: 'glance' },
);
