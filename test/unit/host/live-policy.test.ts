// The live-or-cold rule over the disk sources, as a table: the seed's conditions, RBD and block
// devices only through the backup job, block devices only when allowed, encrypted never.
import { isLiveCapable, mayRestartWithBackupJob, type LivePolicyFacts } from '../../../src/host/live-policy';

const base: LivePolicyFacts = { source: 'file', liveVersions: true, backupCapable: true, encrypted: false, disableLiveSnapshot: false, allowLiveBlockDevices: false };

describe('isLiveCapable', () => {
  it.each<[string, Partial<LivePolicyFacts>, boolean]>([
    ['a file disk', {}, true],
    ['a file disk without the backup API (block copy)', { backupCapable: false }, true],
    ['an RBD disk through the backup job', { source: 'rbd' }, true],
    ['an RBD disk without the backup API', { source: 'rbd', backupCapable: false }, false],
    ['a block device, live not allowed (the seed: LVM is cold)', { source: 'block' }, false],
    ['a block device, live allowed', { source: 'block', allowLiveBlockDevices: true }, true],
    ['a block device, live allowed, no backup API', { source: 'block', allowLiveBlockDevices: true, backupCapable: false }, false],
    ['a block device, live allowed, encrypted', { source: 'block', allowLiveBlockDevices: true, encrypted: true }, false],
    ['a file disk, encrypted', { encrypted: true }, false],
    ['an RBD disk, encrypted', { source: 'rbd', encrypted: true }, false],
    ['live snapshots disabled', { disableLiveSnapshot: true }, false],
    ['a block device, live allowed but live snapshots disabled', { source: 'block', allowLiveBlockDevices: true, disableLiveSnapshot: true }, false],
    ['libvirt/QEMU too old', { liveVersions: false }, false],
    ['a disk no source reads', { source: null }, false],
  ])('%s → live %s', (_what, facts, live) => {
    expect(isLiveCapable({ ...base, ...facts })).toBe(live);
  });
});

describe('mayRestartWithBackupJob (a cold snapshot of a running guest, restarted from its save with a job)', () => {
  it.each<[string, Partial<LivePolicyFacts>, boolean]>([
    ['a file disk', {}, true],
    ['a file disk, live snapshots disabled: the cut is taken stopped', { disableLiveSnapshot: true }, true],
    ['a file disk without the backup API', { backupCapable: false }, false],
    ['an RBD disk through the backup job', { source: 'rbd' }, true],
    ['a block device, live not allowed: the cut is the save\'s', { source: 'block' }, true],
    ['a block device, live allowed', { source: 'block', allowLiveBlockDevices: true }, true],
    ['a block device without the backup API', { source: 'block', backupCapable: false }, false],
    ['a block device, encrypted', { source: 'block', encrypted: true }, false],
    ['a file disk, encrypted', { encrypted: true }, false],
    ['libvirt/QEMU too old', { liveVersions: false }, false],
    ['a disk no source reads', { source: null }, false],
  ])('%s → %s', (_what, facts, may) => {
    expect(mayRestartWithBackupJob({ ...base, ...facts })).toBe(may);
  });
});
