// bench:load — both load benches of the fault-matrix issue, one after the other: 100 snapshots in
// flight through the real engine, then createImage at 200/s through the real API.
// Run: npm run bench:load
import { runSequence } from './support/sequence';

void runSequence('bench:load', [
  { name: 'bench:load:snapshots', file: 'load-snapshots.ts' },
  { name: 'bench:load:api', file: 'load-api.ts' },
]);
