// bench — every benchmark in sequence, each in its own process: the libvirt client, the snapshot
// end to end, the stream's memory and resume, incremental and RBD snapshots, the store's verify job and garbage collection, volume-backed snapshots, then the two load benches. Each prints its own tables; a summary closes the run.
// Run: npm run bench
import { runSequence } from './support/sequence';

void runSequence('bench (all)', [
  { name: 'libvirt client', file: 'libvirt-client.ts' },
  { name: 'bench:snapshot', file: 'snapshot-e2e.ts' },
  { name: 'bench:stream', file: 'stream-resume.ts' },
  { name: 'bench:incremental', file: 'incremental.ts' },
  { name: 'bench:rbd', file: 'rbd-snapshot.ts' },
  { name: 'bench:verify', file: 'verify-job.ts' },
  { name: 'bench:gc', file: 'store-gc.ts' },
  { name: 'bench:volume', file: 'volume-backed.ts' },
  { name: 'bench:load:snapshots', file: 'load-snapshots.ts' },
  { name: 'bench:load:api', file: 'load-api.ts' },
]);
