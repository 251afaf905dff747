// Nova's _rotate_backups against the real image service (its HTTP API, the composing store): ten
// incremental backups, each composed over the one before and rotated with rotation 3, leave the
// newest three, and each of those still downloads whole; images of another type, instance or
// project, snapshots and images without their bytes are never touched; rotation 0 keeps none; a
// rotation cut short is finished by the next one and never takes the new image. A schedule's
// retention (PBS's prune) over the same backups keeps every kept incremental whole too.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { rotateBackups, type RotationRequest } from '../../../src/activities/backup-rotation';
import { pruneBackups } from '../../../src/activities/backup-prune';
import type { Identity } from '../../../src/auth';
import { createSnapshotImageRecord, encodeMap, GlanceHttpClient, imageStatus, type ImageClient } from '../../../src/images/client';
import { startImageServer, UNAUTHENTICATED_ADMIN as admin, type RunningImageServer } from '../../../src/images/service';
import { diskWith, stage } from '../images/composed-fixture';

const KiB = 1024;
const MiB = 1024 * KiB;
const log = pino({ level: 'silent' });
const identities: Record<string, Identity> = {
  service: { kind: 'service', projectId: 'service' },
  p1: { kind: 'project', projectId: 'p1', projectAdmin: false },
  p2: { kind: 'project', projectId: 'p2', projectAdmin: false },
};

let dir: string;
let server: RunningImageServer;
let images: GlanceHttpClient;
const instanceUuid = randomUUID();

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rotate-backups-'));
  server = await startImageServer({ port: 0, dataDir: dir, maxImageBytes: 64 * MiB, authenticate: (token) => identities[token] ?? null });
  images = new GlanceHttpClient(server.url, 'service');
});
afterEach(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

/** Distinct created_at for each image (the service's clock has millisecond steps). */
const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 3));

interface Props {
  owner?: string;
  instance?: string;
  backupType?: string;
  imageType?: string;
  protected?: boolean;
}

async function createRecord(p: Props = {}): Promise<string> {
  await tick();
  const record = await server.service.create(admin, {
    name: 'b',
    owner: p.owner ?? 'p1',
    ...(p.protected === true ? { protected: true } : {}),
    image_type: p.imageType ?? 'backup',
    backup_type: p.backupType ?? 'daily',
    instance_uuid: p.instance ?? instanceUuid,
  });
  return record.id;
}

/** An active backup: a full upload of `disk`, or an incremental over `parent` changing `changed`. */
async function backupOf(disk: Buffer, map: ReturnType<typeof diskWith>['map'], p: Props = {}, over?: { parent: string; changed: [number, number][] }): Promise<string> {
  const id = await createRecord(p);
  await stage(server.service, id, { format: 'raw', map: encodeMap(map), ...(over ?? {}) }, disk);
  await server.service.resumable.commit(admin, id, {});
  return id;
}

async function downloaded(id: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of await new GlanceHttpClient(server.url, 'p1').download(id)) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

const rotate = (imageId: string, rotation: number, client: ImageClient = images, backupType = 'daily'): ReturnType<typeof rotateBackups> =>
  rotateBackups(client, { instanceUuid, imageId, backupType, rotation } satisfies RotationRequest, log);

const status = (id: string): Promise<string> => imageStatus(images, id);

describe('backup rotation (Nova _rotate_backups)', () => {
  it('ten incremental backups rotated with rotation 3 leave the newest three, each downloading whole', async () => {
    const { disk, map } = diskWith([[0, 2 * MiB]]);
    const bystanders = [
      await backupOf(disk, map, { backupType: 'weekly' }),
      await backupOf(disk, map, { imageType: 'snapshot' }),
      await backupOf(disk, map, { instance: randomUUID() }),
      await backupOf(disk, map, { owner: 'p2' }),
      await createRecord(), // queued: no bytes, no backup
    ];
    const made: { id: string; disk: Buffer }[] = [];
    let current = disk;
    for (let i = 0; i < 10; i++) {
      const next = Buffer.from(current);
      const changed: [number, number][] = [[(i % 8) * 256 * KiB, 256 * KiB]];
      randomBytes(256 * KiB).copy(next, changed[0]![0]);
      const prev = made[made.length - 1];
      const id = await backupOf(next, map, {}, prev === undefined ? undefined : { parent: prev.id, changed });
      made.push({ id, disk: next });
      current = next;
      const outcome = await rotate(id, 3);
      const expectedKept = made.slice(-3).reverse().map((b) => b.id);
      expect(outcome.kept).toEqual(expectedKept);
      expect(outcome.failed).toEqual([]);
      expect(outcome.deleted).toEqual(made.length > 3 ? [made[made.length - 4]!.id] : []);
    }
    for (const { id } of made.slice(0, 7)) expect(await status(id)).toBe('deleted');
    for (const { id, disk: expected } of made.slice(7)) {
      expect(await status(id)).toBe('active');
      expect((await downloaded(id)).equals(expected)).toBe(true);
    }
    expect(await Promise.all(bystanders.map(status))).toEqual(['active', 'active', 'active', 'active', 'queued']);
  }, 60_000);

  it('rotation 0 keeps none of the type: the new backup goes too, as in Nova', async () => {
    const { disk, map } = diskWith([[0, MiB]]);
    const old = await backupOf(disk, map);
    const fresh = await backupOf(disk, map);
    const outcome = await rotate(fresh, 0);
    expect(outcome).toEqual({ kept: [], deleted: [fresh, old], failed: [] });
    expect([await status(old), await status(fresh)]).toEqual(['deleted', 'deleted']);
  });

  it('the new backup counts as the newest whatever its created_at says, and is never deleted with rotation >= 1', async () => {
    const { disk, map } = diskWith([[0, MiB]]);
    const fresh = await backupOf(disk, map);
    const later = await backupOf(disk, map); // made after it: the clock alone would keep this one
    const outcome = await rotate(fresh, 1);
    expect(outcome.kept).toEqual([fresh]);
    expect(outcome.deleted).toEqual([later]);
    expect(await status(fresh)).toBe('active');
  });

  it('a protected backup it cannot delete is reported, the others still go', async () => {
    const { disk, map } = diskWith([[0, MiB]]);
    const oldest = await backupOf(disk, map);
    const kept = await backupOf(disk, map, { protected: true });
    const fresh = await backupOf(disk, map);
    const outcome = await rotate(fresh, 1);
    expect(outcome.deleted).toEqual([oldest]);
    expect(outcome.failed.map((f) => f.imageId)).toEqual([kept]);
    expect(await status(kept)).toBe('active');
  });

  it('a rotation cut short (its worker died between deletes) is finished by the next attempt, which keeps the new image', async () => {
    const { disk, map } = diskWith([[0, MiB]]);
    const old = [await backupOf(disk, map), await backupOf(disk, map), await backupOf(disk, map)];
    const fresh = await backupOf(disk, map);
    let deletes = 0;
    const dying: ImageClient = Object.assign(Object.create(images) as GlanceHttpClient, {
      delete: async (id: string) => {
        if (++deletes > 1) return new Promise<void>(() => undefined); // the worker is gone: this never answers
        return images.delete(id);
      },
    });
    void rotate(fresh, 1, dying);
    while (deletes < 2) await new Promise((r) => setTimeout(r, 5));
    expect(await Promise.all(old.map(status))).toEqual(['active', 'active', 'deleted']);

    const retried = await rotate(fresh, 1);
    expect(retried.kept).toEqual([fresh]);
    expect(retried.deleted.sort()).toEqual([old[0], old[1]].sort());
    expect(await Promise.all([...old, fresh].map(status))).toEqual(['deleted', 'deleted', 'deleted', 'active']);
  });

  it('rotates nothing when the new backup is gone (a failed or deleted backup never rotates)', async () => {
    const { disk, map } = diskWith([[0, MiB]]);
    const old = await backupOf(disk, map);
    const outcome = await rotate(randomUUID(), 0);
    expect(outcome).toEqual({ kept: [], deleted: [], failed: [] });
    expect(await status(old)).toBe('active');
  });
});

describe("a schedule's retention (PBS's prune) over the same backups", () => {
  const prune = (imageId: string, client: ImageClient = images) => pruneBackups(client, { instanceUuid, imageId, backupType: 'daily', retention: { keepLast: 3 } }, log);

  it('ten incremental backups pruned with keep-last 3 leave the newest three, each downloading whole; others untouched', async () => {
    const { disk, map } = diskWith([[0, 2 * MiB]]);
    const bystanders = [await backupOf(disk, map, { backupType: 'weekly' }), await backupOf(disk, map, { instance: randomUUID() }), await backupOf(disk, map, { owner: 'p2' })];
    const made: { id: string; disk: Buffer }[] = [];
    for (let i = 0; i < 10; i++) {
      const next = Buffer.from(made[made.length - 1]?.disk ?? disk);
      const changed: [number, number][] = [[(i % 8) * 256 * KiB, 256 * KiB]];
      randomBytes(256 * KiB).copy(next, changed[0]![0]);
      const prev = made[made.length - 1];
      made.push({ id: await backupOf(next, map, {}, prev === undefined ? undefined : { parent: prev.id, changed }), disk: next });
      const outcome = await prune(made[made.length - 1]!.id);
      expect(outcome.kept).toEqual(made.slice(-3).reverse().map((b) => b.id));
      expect(outcome.failed).toEqual([]);
    }
    for (const { id } of made.slice(0, 7)) expect(await status(id)).toBe('deleted');
    for (const { id, disk: expected } of made.slice(7)) expect((await downloaded(id)).equals(expected)).toBe(true);
    expect(await Promise.all(bystanders.map(status))).toEqual(['active', 'active', 'active']);
  }, 60_000);

  it('keeps the new backup first whatever the clock says, and prunes nothing when it is gone', async () => {
    const { disk, map } = diskWith([[0, MiB]]);
    const fresh = await backupOf(disk, map);
    const later = [await backupOf(disk, map), await backupOf(disk, map), await backupOf(disk, map)];
    expect(await prune(randomUUID())).toEqual({ kept: [], deleted: [], failed: [] });
    const outcome = await prune(fresh);
    expect(outcome.kept).toEqual([fresh, later[2], later[1]]);
    expect(outcome.deleted).toEqual([later[0]]);
  });
});

it("a scheduled backup's image names its schedule; user metadata cannot claim one", async () => {
  const source = { uuid: instanceUuid, imageRef: null };
  const forged = await createSnapshotImageRecord(images, source, 'by hand', { backup_schedule_id: 'backup-forged' }, { owner: 'p1', backupType: 'daily' });
  expect(forged.properties.backup_schedule_id).toBeUndefined();
  const scheduled = await createSnapshotImageRecord(images, source, 'nightly', { backup_schedule_id: 'backup-forged' }, { owner: 'p1', backupType: 'daily', backupScheduleId: `backup-${instanceUuid}` });
  expect(scheduled.properties).toMatchObject({ image_type: 'backup', backup_type: 'daily', backup_schedule_id: `backup-${instanceUuid}` });
});
