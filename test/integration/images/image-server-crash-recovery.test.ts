// Kills the standalone image service process (SIGKILL) in the middle of an upload and checks that
// the restarted service removes the staged partial file and marks the image killed.
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { GlanceHttpClient, ImageUploadFailed } from '../../../src/images/client';
import { listDir } from './image-server-fixture';
import { exited, killAll, repoRoot, startServerProcess } from '../../support/image-server-process';

let dir: string;
const children: ChildProcess[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'image-crash-'));
});
afterEach(async () => {
  await killAll(children);
  await rm(dir, { recursive: true, force: true });
});

it('after a SIGKILL mid-upload, restart removes the staged file and marks the image killed', async () => {
  const first = await startServerProcess(dir);
  children.push(first.proc);
  const client = new GlanceHttpClient(first.url);
  const done = await client.create({ name: 'complete' });
  await client.upload(done.id, join(repoRoot, 'package.json'));
  const victim = await client.create({ name: 'interrupted' });
  const source = new PassThrough();
  source.write(randomBytes(256 * 1024));
  const upload = client.upload(victim.id, source).catch((e: unknown) => e);
  for (let i = 0; i < 400 && (await listDir(join(dir, 'staging'))).length === 0; i += 1) await new Promise((r) => setTimeout(r, 25));
  expect(await listDir(join(dir, 'staging'))).toHaveLength(1);
  expect((await client.get(victim.id)).status).toBe('saving');

  first.proc.kill('SIGKILL');
  await exited(first.proc);
  expect(await upload).toBeInstanceOf(ImageUploadFailed);

  const second = await startServerProcess(dir);
  children.push(second.proc);
  expect(second.recovery.killedImageIds).toEqual([victim.id]);
  expect(second.recovery.removedStagingFiles).toHaveLength(1);
  expect(await listDir(join(dir, 'staging'))).toEqual([]);
  const after = new GlanceHttpClient(second.url);
  expect((await after.get(victim.id)).status).toBe('killed');
  expect((await after.get(done.id)).status).toBe('active');
  expect((await after.list({ status: 'active' })).map((i) => i.id)).toEqual([done.id]);

  // SIGTERM is a graceful stop with exit code 0.
  second.proc.kill('SIGTERM');
  expect(await exited(second.proc)).toBe(0);
});
