// kill -9 of the standalone image service in the middle of a resumable upload: after the restart
// the session is still there with the committed length (everything the killed process wrote),
// the upload goes on from there, and the published image is byte-identical to the source.
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { GlanceHttpClient, ImageUploadFailed } from '../../../src/images/client';
import { finishUpload, hashBytes, hashStream, listDir, waitFor } from './image-server-fixture';
import { exited, killAll, startServerProcess } from '../../support/image-server-process';
import { allDataRawLayout } from '../../support/raw-layout';

let dir: string;
const children: ChildProcess[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'image-resumable-crash-'));
});
afterEach(async () => {
  await killAll(children);
  await rm(dir, { recursive: true, force: true });
});

it('after a SIGKILL mid-PATCH, the restarted service resumes the upload from its committed length', async () => {
  const bytes = randomBytes(4 * 1024 * 1024 + 512);
  const first = await startServerProcess(dir);
  children.push(first.proc);
  const client = new GlanceHttpClient(first.url);
  const image = await client.create({ name: 'crash', disk_format: 'raw', container_format: 'bare' });
  await client.openStagedUpload(image.id, bytes.length, 'snapshot-1', allDataRawLayout(bytes.length));
  const firstPart = 1024 * 1024;
  expect(await client.appendStaged(image.id, 0, Readable.from([bytes.subarray(0, firstPart)]), { length: firstPart })).toBe(firstPart);

  // A second append is in flight when the process dies.
  const inFlightTo = 2 * 1024 * 1024 + 5;
  const source = new PassThrough();
  source.write(bytes.subarray(firstPart, inFlightTo));
  const append = client.appendStaged(image.id, firstPart, source).catch((e: unknown) => e);
  const dataFile = join(dir, 'resumable', `${image.id}.data`);
  await waitFor(async () => (await stat(dataFile)).size > firstPart, 'bytes of the second append on disk');
  first.proc.kill('SIGKILL');
  await exited(first.proc);
  expect(await append).toBeInstanceOf(ImageUploadFailed);

  const second = await startServerProcess(dir);
  children.push(second.proc);
  expect(second.recovery.resumedUploadIds).toEqual([image.id]);
  expect(second.recovery.killedImageIds).toEqual([]);
  const after = new GlanceHttpClient(second.url);
  expect((await after.get(image.id)).status).toBe('uploading');
  const state = await after.stagedUpload(image.id);
  // At least the acknowledged append, at most what was sent; the staged bytes are a prefix of the source.
  expect(state).toMatchObject({ size: bytes.length, token: 'snapshot-1' });
  const committed = state?.offset ?? -1;
  expect(committed).toBeGreaterThan(firstPart);
  expect(committed).toBeLessThanOrEqual(inFlightTo);
  expect((await readFile(dataFile)).equals(bytes.subarray(0, committed))).toBe(true);

  expect(await finishUpload(after, image.id, bytes)).toEqual({ resumedAt: committed });
  const expected = hashBytes(bytes);
  // The session's layout came back with it: the commit composes the staged bytes.
  expect(await after.commitStaged(image.id, {})).toMatchObject({ status: 'active', size: bytes.length });
  expect(await hashStream(await after.download(image.id))).toEqual(expected);
  await waitFor(async () => (await after.get(image.id)).checksum === expected.md5, 'the served checksums');
  expect(await listDir(join(dir, 'resumable'))).toEqual([]);

  second.proc.kill('SIGTERM');
  expect(await exited(second.proc)).toBe(0);
});
