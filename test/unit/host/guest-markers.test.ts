// The guest markers a cold run keeps in its work dir, and the work dir keeping them through every
// wipe and removal of the run's files until the guest is back.
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { POWER_STATE_PAUSED, POWER_STATE_RUNNING } from '../../../src/contract';
import { exportPaths } from '../../../src/host/export-paths';
import { holdsGuest, namedDomain, readGuestMarker, removeGuestMarkers, writeGuestMarker } from '../../../src/host/guest-markers';
import { SnapshotWorkDirs } from '../../../src/host/snapshot-workdir';

const KEY = '01a2136c-f964-7829-9542-d46c21c7de15';
const DOM = { name: 'instance-00000001', uuid: '5b3a2f1e-8c4d-4e6f-9a7b-1c2d3e4f5a6b', id: 7 };

describe('guest markers', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'markers-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('names the domain and, for a save, the power state to bring it back to; each kind in its own file', async () => {
    expect(holdsGuest(dir)).toBe(false);
    expect(await readGuestMarker(dir, 'saved')).toBeNull();
    await writeGuestMarker(dir, 'saved', { ...namedDomain(DOM), powerState: POWER_STATE_PAUSED });
    expect(await readGuestMarker(dir, 'saved')).toEqual({ domainUuid: DOM.uuid, domainName: DOM.name, powerState: POWER_STATE_PAUSED });
    expect(holdsGuest(dir, 'saved')).toBe(true);
    expect(holdsGuest(dir, 'restartedPaused')).toBe(false);
    expect(holdsGuest(dir)).toBe(true);

    await writeGuestMarker(dir, 'restartedPaused', namedDomain(DOM));
    expect(await readGuestMarker(dir, 'restartedPaused')).toEqual({ domainUuid: DOM.uuid, domainName: DOM.name });
    await removeGuestMarkers(dir, 'restartedPaused');
    expect(holdsGuest(dir, 'restartedPaused')).toBe(false);
    expect(holdsGuest(dir, 'saved')).toBe(true);
    await removeGuestMarkers(dir);
    await removeGuestMarkers(dir);
    expect(holdsGuest(dir)).toBe(false);
    // Written whole through a temp file and a rename: nothing else is left beside a marker.
    expect(await readdir(dir)).toEqual([]);
  });

  it('refuses to write a marker that names no domain, and throws on reading one that names none', async () => {
    await expect(writeGuestMarker(dir, 'saved', { domainUuid: 'not-a-uuid', domainName: DOM.name, powerState: POWER_STATE_RUNNING })).rejects.toThrow();
    expect(holdsGuest(dir)).toBe(false);
    await writeFile(exportPaths(dir).savedGuest, '{"domainUuid":');
    await expect(readGuestMarker(dir, 'saved')).rejects.toThrow(/does not name a domain/);
    // A saved marker must say what to bring the guest back to.
    await writeFile(exportPaths(dir).savedGuest, JSON.stringify(namedDomain(DOM)));
    await expect(readGuestMarker(dir, 'saved')).rejects.toThrow(/does not name a domain/);
  });

  it('reads a restart marker as the releases before the saved marker wrote it', async () => {
    await writeFile(exportPaths(dir).restartedGuest, `${JSON.stringify({ domainUuid: DOM.uuid, domainName: DOM.name })}\n`, { mode: 0o600 });
    expect(await readGuestMarker(dir, 'restartedPaused')).toEqual({ domainUuid: DOM.uuid, domainName: DOM.name });
  });
});

describe('a work dir whose run holds its guest', () => {
  let root: string;
  let dirs: SnapshotWorkDirs;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'workdirs-'));
    dirs = new SnapshotWorkDirs(root);
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  async function heldDir(): Promise<string> {
    const dir = await dirs.ensure(KEY, false);
    await dirs.writeOwner(KEY, 'snapshot-x');
    await writeGuestMarker(dir, 'saved', { ...namedDomain(DOM), powerState: POWER_STATE_RUNNING });
    await writeFile(join(dir, 'snapshot.qcow2'), 'bytes');
    return dir;
  }

  it("keeps the marker and the owner record through the extract's wipe and the close's removal", async () => {
    const dir = await heldDir();
    expect(await dirs.create(KEY, true)).toBe(dir);
    expect((await readdir(dir)).sort()).toEqual(['.owner.json', 'saved-guest']);
    expect(await dirs.readOwner(KEY)).toEqual({ workflowId: 'snapshot-x', runId: KEY });

    await writeFile(join(dir, 'export.sock'), '');
    expect(await dirs.remove(KEY)).toBe(false);
    expect((await readdir(dir)).sort()).toEqual(['.owner.json', 'saved-guest']);
    // Still held: removeEmpty leaves it.
    await dirs.removeEmpty(KEY);
    expect(existsSync(dir)).toBe(true);

    // The guest is back: the marker goes, then the dir with its owner record.
    await removeGuestMarkers(dir);
    await dirs.removeEmpty(KEY);
    expect(await dirs.list()).toEqual([]);
    await dirs.removeEmpty(KEY);
  });

  it('leaves a dir with files of the run in it to whoever removes them, and removes a dir that holds no guest whole', async () => {
    const dir = await heldDir();
    await removeGuestMarkers(dir);
    // The seed's path restores the guest before its upload: the extracted file stays.
    await dirs.removeEmpty(KEY);
    expect((await readdir(dir)).sort()).toEqual(['.owner.json', 'snapshot.qcow2']);
    expect(await dirs.remove(KEY)).toBe(true);
    expect(await dirs.list()).toEqual([]);
    expect(await dirs.remove(KEY)).toBe(true);
  });
});
