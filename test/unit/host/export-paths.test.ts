// The names inside a work dir that the live path, the cold path and the start-up sweep share, and
// the reading of a run id back from a path libvirt reports (spelled as SnapshotWorkDirs spells it).
import { randomUUID } from 'node:crypto';
import { exportPaths, isInside, workDirRunIdOf } from '../../../src/host/export-paths';
import { isQemuNbdServing } from '../../../src/host/nbd-export';
import { SnapshotWorkDirs } from '../../../src/host/snapshot-workdir';

describe('exportPaths', () => {
  it('puts the socket, the pid file and the scratch files inside the work dir', () => {
    const p = exportPaths('/var/snap/snap-1');
    expect(p.socketPath).toBe('/var/snap/snap-1/export.sock');
    expect(p.pidFile).toBe('/var/snap/snap-1/qemu-nbd.pid');
    expect(p.scratchFile('vda')).toBe('/var/snap/snap-1/scratch-vda.qcow2');
  });

  it('refuses a relative or unsafe work dir and a disk target that is not one', () => {
    expect(() => exportPaths('snap-1')).toThrow(/unsafe/);
    expect(() => exportPaths('/var/snap/../etc')).toThrow(/unsafe/);
    expect(() => exportPaths('/var/snap/snap-1').scratchFile('../vda')).toThrow(/disk target/);
  });
});

describe('workDirRunIdOf', () => {
  const root = '/var/lib/snapshots';
  const runId = randomUUID();
  const dirs = new SnapshotWorkDirs(root);

  it('reads the run id of a file inside a work dir that SnapshotWorkDirs names', () => {
    const dir = dirs.pathFor(runId);
    expect(workDirRunIdOf(root, exportPaths(dir).socketPath)).toBe(runId);
    expect(workDirRunIdOf(`${root}/`, `${dir}/deeper/export.sock`)).toBe(runId);
  });

  it('answers undefined for the dir itself, other names, and paths outside the root', () => {
    expect(workDirRunIdOf(root, dirs.pathFor(runId))).toBeUndefined();
    expect(workDirRunIdOf(root, `${root}/snap-not-a-uuid/export.sock`)).toBeUndefined();
    expect(workDirRunIdOf(root, `${root}/export.sock`)).toBeUndefined();
    expect(workDirRunIdOf(root, `/elsewhere/snap-${runId}/export.sock`)).toBeUndefined();
    expect(workDirRunIdOf(root, `${root}-other/snap-${runId}/export.sock`)).toBeUndefined();
    expect(workDirRunIdOf(root, `${root}/../x/snap-${runId}/export.sock`)).toBeUndefined();
  });

  it('isInside: strictly inside, never the dir itself or a sibling sharing its prefix', () => {
    expect(isInside('/a/b', '/a/b/c')).toBe(true);
    expect(isInside('/a/b', '/a/b')).toBe(false);
    expect(isInside('/a/b', '/a/bc/d')).toBe(false);
    expect(isInside('/a/b', '/a/b/../c')).toBe(false);
  });
});

describe('isQemuNbdServing', () => {
  const sock = '/var/snap/snap-1/export.sock';
  it('accepts qemu-nbd with the socket in any spelling, and nothing else', () => {
    expect(isQemuNbdServing(['qemu-nbd', '--read-only', `--socket=${sock}`, '/d.qcow2'], sock)).toBe(true);
    expect(isQemuNbdServing(['/usr/bin/qemu-nbd', '-k', sock, '/d.qcow2'], sock)).toBe(true);
    expect(isQemuNbdServing(['qemu-nbd', '--socket', sock], sock)).toBe(true);
    expect(isQemuNbdServing(['qemu-nbd', `--socket=${sock}.old`], sock)).toBe(false);
    expect(isQemuNbdServing(['sleep', `--socket=${sock}`], sock)).toBe(false);
    expect(isQemuNbdServing([], sock)).toBe(false);
  });
});
