// The attack of OSSA-2024-001 / CVE-2024-32498 on the snapshot path: a guest on a raw disk writes
// a qcow2 header into its first bytes, naming a backing file of the host's (a recognisable
// pattern) and a 1 TiB virtual size. A host that probes the disk's format reads that header and
// builds the snapshot on the guest's choice of file and size; ours reads the format, the chain and
// the size from libvirt, so the snapshot holds the disk's real bytes, header included, on every
// data path (live block copy and backup job, cold convert and qemu-nbd).
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SnapshotResult } from '../../../src/contract';
import { describeDomain } from '../../../src/host/domain-inspection';
import { createQcow2, imageInfo, writePattern } from '../../../src/host/qemu-img';
import { runTool } from '../../../src/process/tool-process';
import { startEngine, type Engine } from '../../support/engine-harness';
import { downloadImage } from '../../support/image-bytes';
import { createInstanceFixture, type InstanceFixture } from '../../support/instance-fixture';

const MiB = 1024 * 1024;
const DISK_BYTES = 16 * MiB;
const SECRET_BYTE = 0x5e;

interface ArmedGuest {
  fixture: InstanceFixture;
  secret: string;
  /** the raw disk's bytes, the guest's header included: what a snapshot must hold */
  diskBytes: Buffer;
}

/** An OS-less guest on one raw disk whose first bytes are a qcow2 header of the guest's making. */
async function armedRawGuest(): Promise<ArmedGuest> {
  const fixture = await createInstanceFixture({ diskFormat: 'raw', diskSizeBytes: DISK_BYTES, start: false, prefix: 'rawhdr' });
  try {
    const disk = fixture.instance.overlayPath;
    // The file the header names sits in the instance's own directory: confinement alone would let it through.
    const secret = join(fixture.dir, 'host-secret.raw');
    await runTool('truncate', ['-s', String(4 * MiB), secret]);
    await writePattern(secret, { byte: SECRET_BYTE, offset: 0, length: 4 * MiB }, 'raw');
    const header = join(fixture.dir, 'guest-header.qcow2');
    await createQcow2(header, { sizeBytes: 1024 ** 4, backing: secret, backingFormat: 'raw' });
    const headerBytes = await readFile(header);
    expect(headerBytes.length).toBeLessThan(MiB);
    const handle = await open(disk, 'r+');
    try {
      await handle.write(headerBytes, 0, headerBytes.length, 0);
    } finally {
      await handle.close();
    }
    // The trap is armed: read as qcow2, the disk names the host's file and a 1 TiB size.
    expect(await imageInfo(disk, 'qcow2')).toMatchObject({ backingFilename: secret, virtualSize: 1024 ** 4 });
    return { fixture, secret, diskBytes: await readFile(disk) };
  } catch (err) {
    await fixture.cleanup();
    throw err;
  }
}

async function snapshotAndDownload(engine: Engine, guest: ArmedGuest): Promise<{ result: SnapshotResult; image: Buffer }> {
  const instance = await engine.register(guest.fixture);
  const { imageId, result } = await engine.startSnapshot(instance.uuid, 'raw-disk-header');
  const outcome = await result;
  return { result: outcome, image: await readFile(await downloadImage(engine.images, imageId, guest.fixture.dir)) };
}

function expectGuestBytes(image: Buffer, guest: ArmedGuest): void {
  expect(image.length).toBe(DISK_BYTES);
  expect(image.equals(guest.diskBytes)).toBe(true);
  // The guest's header is in the image as data, as the guest wrote it.
  expect(image.subarray(0, 4).toString('latin1')).toBe('QFI\xfb');
}

describe('a raw guest disk that poses as qcow2', () => {
  let guest: ArmedGuest;
  let config: Parameters<typeof describeDomain>[2];
  let describedStopped: Awaited<ReturnType<typeof describeDomain>> | Error;
  beforeAll(async () => {
    guest = await armedRawGuest();
    const { client, instance } = guest.fixture;
    config = { instancesPath: guest.fixture.dir, imageCachePath: join(guest.fixture.dir, '_base'), disableBackupApi: false, disableLiveSnapshot: false, ephemeralEncryption: false };
    describedStopped = await describeDomain(client, instance.domain, config).catch((err: unknown) => err as Error);
    await client.domainCreateWithFlags(instance.domain, 0);
  });
  afterAll(async () => {
    await guest?.fixture.cleanup();
  });

  it('is described from libvirt alone, stopped and running: raw, no backing, its real size', async () => {
    const { client, instance } = guest.fixture;
    expect(describedStopped).toMatchObject({ sourceFormat: 'raw', backingChain: [], virtualSize: DISK_BYTES });
    const running = await client.domainLookupByName(instance.name);
    expect(await describeDomain(client, running, config)).toMatchObject({ sourceFormat: 'raw', backingChain: [], virtualSize: DISK_BYTES });
  });

  describe.each([
    ['block-copy (SNAP_DISABLE_BACKUP_API)', { SNAP_DISABLE_BACKUP_API: 'true' }, 'live', 'block-copy'],
    ['one pass (backup job)', {}, 'live', 'backup-job'],
    ['cold convert', { SNAP_DISABLE_BACKUP_API: 'true', SNAP_DISABLE_LIVE_SNAPSHOT: 'true' }, 'cold', 'convert'],
    ['cold one pass, the guest saved until its disk is read (qemu-nbd)', { SNAP_DISABLE_LIVE_SNAPSHOT: 'true', SNAP_COLD_RESUME_BEFORE_STREAM: 'false' }, 'cold', 'qemu-nbd'],
  ])('snapshot through the %s path', (_name, hostEnv, mode, dataPath) => {
    let engine: Engine;
    beforeAll(async () => {
      engine = await startEngine({ hostEnv });
    });
    afterAll(async () => {
      await engine?.stop();
    });

    it('holds exactly the raw bytes of the disk, header included, not the named backing file\'s', async () => {
      const { result, image } = await snapshotAndDownload(engine, guest);
      expect(result).toMatchObject({ mode, status: 'active', dataPath });
      expectGuestBytes(image, guest);
      expect(image.includes(Buffer.alloc(64 * 1024, SECRET_BYTE))).toBe(false);
    });
  });
});
