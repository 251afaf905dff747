// Nova's createBackup over real HTTP: its schema's refusals (400) changing nothing, 404 across
// projects, 403 for the metadata quota before 2.39 and for the policy, 409 for a busy server, 400
// for a volume-backed one (Nova's backup() refuses it, after its state checks); the
// accepted backup (202, Location unless rotation is 0, {"image_id"} from 2.45, checked with
// Tempest's schemas) running to an active image marked as a backup, its older backups of the type
// rotated away once it is active, and the createBackup action with its compute_backup_instance event.
import { WorkflowNotFoundError } from '@temporalio/client';
import { snapshotWorkflowId, VOLUME_BACKED_BACKUP_REFUSAL } from '../../../src/contract';
import { call, createBackup, createImage, type HttpAnswer } from '../../support/api-http';
import { TOKENS, startApiStack, type ApiStack } from '../../support/api-stack';
import { tempestRefusals, type SchemaCase } from '../../support/tempest-schemas';

let stack: ApiStack;
let url: string;
beforeAll(async () => {
  stack = await startApiStack({ metadataQuota: 2 });
  url = stack.api.url;
});
afterAll(async () => {
  await stack?.stop();
});

const at = (version: string) => ({ 'OpenStack-API-Version': `compute ${version}` });
const daily = (extra: Record<string, unknown> = {}) => ({ name: 'nightly', backup_type: 'daily', rotation: 2, ...extra });

function fault(answer: HttpAnswer, name: string, code: number): string {
  expect(answer.status).toBe(code);
  const body = answer.json as Record<string, { code: number; message: string }>;
  expect(Object.keys(body)).toEqual([name]);
  return body[name]?.message ?? '';
}

async function settle(uuid: string): Promise<void> {
  await stack.temporal.workflow.getHandle(snapshotWorkflowId(uuid)).result().catch(() => undefined);
}

/** The instance's active backups of a type, newest first, as the owner sees them. */
async function backupsOf(uuid: string, type: string): Promise<string[]> {
  const images = await stack.imagesOf(uuid);
  return images
    .filter((i) => i.status === 'active' && i.properties.image_type === 'backup' && i.properties.backup_type === type)
    .sort((a, b) => b.created_at.localeCompare(a.created_at))
    .map((i) => i.id);
}

async function backupOnce(uuid: string, body: Record<string, unknown>, version = '2.45'): Promise<string> {
  const answer = await createBackup(url, TOKENS.demo, uuid, body, at(version));
  expect({ status: answer.status, body: answer.json }).toMatchObject({ status: 202 });
  // Before 2.45 the body is empty, as in Nova.
  const imageId = (answer.json as { image_id?: string } | undefined)?.image_id ?? '';
  await settle(uuid);
  return imageId;
}

describe('createBackup refusals change nothing', () => {
  it.each([
    ['no backup_type', { name: 'n', rotation: 1 }, /backup_type/],
    ['no rotation', { name: 'n', backup_type: 'daily' }, /rotation/],
    ['no name', { backup_type: 'daily', rotation: 1 }, /name/],
    ['a negative rotation', daily({ rotation: -1 }), /rotation must be an integer >= 0/],
    ['a fractional rotation', daily({ rotation: 1.5 }), /rotation must be an integer >= 0/],
    ['a rotation string that is not digits', daily({ rotation: '1e3' }), /rotation must be an integer >= 0/],
    ['a rotation of another type', daily({ rotation: true }), /rotation must be an integer >= 0/],
    ['an unknown key', daily({ keep: 3 }), /keep/],
    ['a name with a leading space', daily({ name: ' n' }), /An invalid 'name' value was provided/],
    ['a backup_type with a control character', daily({ backup_type: 'da\u001bily' }), /backup_type/],
    ['a metadata key outside Nova\'s pattern', daily({ metadata: { 'a/b': 'x' } }), /metadata/],
  ])('400 for %s', async (_what, body, message) => {
    const inst = await stack.addInstance();
    expect(fault(await createBackup(url, TOKENS.demo, inst.uuid, body), 'badRequest', 400)).toMatch(message);
    expect((await stack.store.getOrThrow(inst.uuid)).taskState).toBeNull();
    expect(await stack.imagesOf(inst.uuid)).toEqual([]);
  });

  it('400 for two actions in one body, 404 for another project\'s server or an unknown one, 409 while busy', async () => {
    const inst = await stack.addInstance();
    const both = await call(url, { method: 'POST', path: `/v2.1/servers/${inst.uuid}/action`, token: TOKENS.demo, body: { createImage: { name: 'n' }, createBackup: daily() } });
    expect(fault(both, 'badRequest', 400)).toBe('Malformed message body: too many body keys');
    expect(fault(await createBackup(url, TOKENS.other, inst.uuid, daily()), 'itemNotFound', 404)).toBe(`Instance ${inst.uuid} could not be found.`);
    fault(await createBackup(url, TOKENS.demo, '00000000-0000-4000-8000-000000000000', daily()), 'itemNotFound', 404);
    await stack.store.setTaskStateOrThrow(inst.uuid, [null], 'image_uploading');
    expect(fault(await createBackup(url, TOKENS.demo, inst.uuid, daily()), 'conflictingRequest', 409)).toBe(`Cannot 'createBackup' instance ${inst.uuid} while it is in task_state image_uploading`);
    expect(await stack.imagesOf(inst.uuid)).toEqual([]);
  });

  it("400 for a volume-backed server, as Nova's backup() answers, once its state checks pass: no image, no action, no run", async () => {
    const inst = await stack.addInstance({ volumes: [{ volumeId: '0b6a57d4-3c1e-4a8f-9d2b-7e5f4c3b2a19', device: 'vda', root: true }] });
    await stack.store.setTaskStateOrThrow(inst.uuid, [null], 'image_uploading');
    fault(await createBackup(url, TOKENS.demo, inst.uuid, daily()), 'conflictingRequest', 409);
    await stack.store.setTaskStateOrThrow(inst.uuid, ['image_uploading'], null);
    expect(fault(await createBackup(url, TOKENS.demo, inst.uuid, daily()), 'badRequest', 400)).toBe(VOLUME_BACKED_BACKUP_REFUSAL);
    expect((await stack.store.getOrThrow(inst.uuid)).taskState).toBeNull();
    expect(await stack.imagesOf(inst.uuid)).toEqual([]);
    const actions = (await call(url, { path: `/v2.1/servers/${inst.uuid}/os-instance-actions`, token: TOKENS.demo })).json as { instanceActions: unknown[] };
    expect(actions.instanceActions).toEqual([]);
    await expect(stack.temporal.workflow.getHandle(snapshotWorkflowId(inst.uuid)).describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
  });

  it('403 for metadata over the quota before 2.39 (Nova stops checking it there)', async () => {
    const inst = await stack.addInstance();
    const metadata = { a: '1', b: '2', c: '3' };
    expect(fault(await createBackup(url, TOKENS.demo, inst.uuid, daily({ metadata }), at('2.38')), 'forbidden', 403)).toBe('Image metadata limit exceeded');
    expect(await stack.imagesOf(inst.uuid)).toEqual([]);
    await backupOnce(inst.uuid, daily({ metadata }), '2.39');
    expect((await stack.imagesOf(inst.uuid)).map((i) => i.properties.c)).toEqual(['3']);
  });
});

describe('createBackup', () => {
  it('backs up, marks the image a backup, rotates the type\'s older backups once the new one is active, and records the action', async () => {
    const inst = await stack.addInstance();
    const snapshot = await createImage(url, TOKENS.demo, inst.uuid, { name: 'snap' });
    expect(snapshot.status).toBe(202);
    await settle(inst.uuid);
    const weekly = await backupOnce(inst.uuid, { name: 'w', backup_type: 'weekly', rotation: 1 });
    const first = await backupOnce(inst.uuid, daily());
    const second = await backupOnce(inst.uuid, daily({ rotation: '2' }));
    expect(await backupsOf(inst.uuid, 'daily')).toEqual([second, first]);

    const third = await createBackup(url, TOKENS.demo, inst.uuid, daily({ metadata: { purpose: 'nightly' } }), at('2.45'));
    expect(third.status).toBe(202);
    const thirdId = (third.json as { image_id: string }).image_id;
    expect(third.headers.location).toBe(`${stack.images.url}/v2/images/${thirdId}`);
    await settle(inst.uuid);
    expect(await backupsOf(inst.uuid, 'daily')).toEqual([thirdId, second]);
    expect(await backupsOf(inst.uuid, 'weekly')).toEqual([weekly]);
    const images = await stack.imagesOf(inst.uuid);
    expect(images.filter((i) => i.properties.image_type === 'snapshot')).toHaveLength(1);
    const image = images.find((i) => i.id === thirdId);
    expect(image?.properties).toMatchObject({ image_type: 'backup', backup_type: 'daily', instance_uuid: inst.uuid, purpose: 'nightly' });
    expect(image?.owner).toBe('demo');
    expect((await stack.store.getOrThrow(inst.uuid)).taskState).toBeNull();

    const result = await stack.temporal.workflow.getHandle(snapshotWorkflowId(inst.uuid)).result();
    expect(result.rotation).toEqual({ kept: [thirdId, second], deleted: [first], failed: [] });

    const actions = (await call(url, { path: `/v2.1/servers/${inst.uuid}/os-instance-actions`, token: TOKENS.demo })).json as { instanceActions: { action: string; request_id: string; message: string | null }[] };
    expect(actions.instanceActions.map((a) => a.action)).toEqual(['createBackup', 'createBackup', 'createBackup', 'createBackup', 'createImage']);
    const shown = await call(url, { path: `/v2.1/servers/${inst.uuid}/os-instance-actions/${String(third.headers['x-compute-request-id'])}`, token: TOKENS.demo, headers: at('2.96') });
    expect((shown.json as { instanceAction: { events: unknown[] } }).instanceAction.events).toEqual([expect.objectContaining({ event: 'compute_backup_instance', result: 'Success' })]);
  });

  it('a failed backup rotates nothing and leaves no image; its ops retry is a backup again, and rotates', async () => {
    const inst = await stack.addInstance();
    const kept = await backupOnce(inst.uuid, daily({ rotation: 1 }));
    stack.cloud.failUploads(inst.uuid, 1);
    await backupOnce(inst.uuid, daily({ rotation: 1 }));
    expect(await backupsOf(inst.uuid, 'daily')).toEqual([kept]);
    expect((await stack.imagesOf(inst.uuid)).map((i) => i.id)).toEqual([kept]);
    const retry = await call(url, { method: 'POST', path: `/ops/snapshots/${snapshotWorkflowId(inst.uuid)}/retry`, token: TOKENS.admin });
    expect(retry.status).toBe(202);
    const retried = (retry.json as { snapshot: { imageId: string } }).snapshot.imageId;
    await settle(inst.uuid);
    expect(await backupsOf(inst.uuid, 'daily')).toEqual([retried]);
  });

  it('rotation 0 answers without Location and keeps no backup of the type, the new one included', async () => {
    const inst = await stack.addInstance();
    const old = await backupOnce(inst.uuid, daily());
    const answer = await createBackup(url, TOKENS.demo, inst.uuid, daily({ rotation: 0 }), at('2.45'));
    expect(answer.status).toBe(202);
    expect(answer.headers.location).toBeUndefined();
    const fresh = (answer.json as { image_id: string }).image_id;
    await settle(inst.uuid);
    expect(await backupsOf(inst.uuid, 'daily')).toEqual([]);
    const result = await stack.temporal.workflow.getHandle(snapshotWorkflowId(inst.uuid)).result();
    expect(result.rotation).toEqual({ kept: [], deleted: [fresh, old], failed: [] });
  });

  it('answers as Tempest\'s create_backup schema says at each microversion (empty before 2.45, {"image_id"} from it)', async () => {
    const inst = await stack.addInstance();
    const cases: SchemaCase[] = [];
    for (const version of ['2.1', '2.44', '2.45', '2.96']) {
      const answer = await createBackup(url, TOKENS.demo, inst.uuid, daily({ rotation: 1 }), at(version));
      expect(answer.headers.location).toEqual(expect.stringContaining('/v2/images/'));
      cases.push({ version, schema: 'servers.create_backup', status: answer.status, body: answer.json ?? '' });
      await settle(inst.uuid);
    }
    expect(cases.map((c) => c.body === '')).toEqual([true, true, false, false]);
    expect((await tempestRefusals(cases)).map((r) => `${r.case.version}: ${r.error.slice(0, 200)}`)).toEqual([]);
    expect(await backupsOf(inst.uuid, 'daily')).toHaveLength(1);
  });
});

describe('os_compute_api:os-create-backup', () => {
  it('set to admin: a member of the server\'s project gets 403 after the server is found; a cloud admin passes the policy', async () => {
    // No workers: this file's stack already polls the control queue.
    const narrow = await startApiStack({ createBackupPolicy: 'admin', workers: false });
    try {
      const inst = await narrow.addInstance();
      const refused = await createBackup(narrow.api.url, TOKENS.demo, inst.uuid, daily());
      expect(fault(refused, 'forbidden', 403)).toBe("Policy doesn't allow os_compute_api:os-create-backup to be performed.");
      fault(await createBackup(narrow.api.url, TOKENS.other, inst.uuid, daily()), 'itemNotFound', 404);
      expect(await narrow.imagesOf(inst.uuid)).toEqual([]);
      // Past the policy, the admin meets the state check (a busy server), so no run starts here.
      await narrow.store.setTaskStateOrThrow(inst.uuid, [null], 'image_uploading');
      fault(await createBackup(narrow.api.url, TOKENS.admin, inst.uuid, daily()), 'conflictingRequest', 409);
    } finally {
      await narrow.stop();
    }
  });
});
