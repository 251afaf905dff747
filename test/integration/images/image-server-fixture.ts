// Starts the image service over real HTTP on an ephemeral port in a throw-away data dir.
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ImageConflict, StagedOffsetMismatch, type ImageClient } from '../../../src/images/client';
import { startImageServer, type RunningImageServer } from '../../../src/images/service';
import type { Authenticator } from '../../../src/auth';

export interface ImageServerFixture {
  dir: string;
  server: RunningImageServer;
  restart(): Promise<RunningImageServer>;
  cleanup(): Promise<void>;
}

export async function startFixture(options: { authenticate?: Authenticator; maxImageBytes?: number; maxJsonBytes?: number } = {}): Promise<ImageServerFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'image-service-'));
  const start = (): Promise<RunningImageServer> =>
    startImageServer({ port: 0, dataDir: dir, maxImageBytes: options.maxImageBytes ?? 1024 ** 3, authenticate: options.authenticate, maxJsonBytes: options.maxJsonBytes });
  const fixture: ImageServerFixture = {
    dir,
    server: await start(),
    async restart() {
      await fixture.server.close();
      fixture.server = await start();
      return fixture.server;
    },
    async cleanup() {
      await fixture.server.close().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
  return fixture;
}

export async function listDir(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}

export async function hashStream(stream: Readable): Promise<{ size: number; md5: string; sha512: string }> {
  const md5 = createHash('md5');
  const sha512 = createHash('sha512');
  let size = 0;
  for await (const chunk of stream) {
    const buf = chunk as Buffer;
    size += buf.length;
    md5.update(buf);
    sha512.update(buf);
  }
  return { size, md5: md5.digest('hex'), sha512: sha512.digest('hex') };
}

export function hashBytes(bytes: Buffer): { size: number; md5: string; sha512: string } {
  return {
    size: bytes.length,
    md5: createHash('md5').update(bytes).digest('hex'),
    sha512: createHash('sha512').update(bytes).digest('hex'),
  };
}

/** A raw HTTP call, for asserting status codes and bodies exactly as a non-TS client sees them. */
export async function raw(
  base: string,
  method: string,
  path: string,
  init: { body?: string | Buffer; headers?: Record<string, string> } = {},
): Promise<{ status: number; json: unknown; text: string; headers: Headers }> {
  const res = await fetch(`${base}${path}`, { method, body: init.body, headers: init.headers });
  const text = await res.text();
  let json: unknown = undefined;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text, headers: res.headers };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 400; i += 1) {
    if (await check()) return;
    await sleep(25);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * What a caller does after a broken append: ask the committed offset and send the rest. While the
 * server is still winding the broken request down it answers 409 (busy, or the offset moved on).
 */
export async function finishUpload(images: ImageClient, id: string, bytes: Buffer): Promise<{ resumedAt: number }> {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    const state = await images.stagedUpload(id);
    if (state === null) throw new Error(`image ${id} has no resumable upload`);
    try {
      const rest = bytes.subarray(state.offset);
      const committed = await images.appendStaged(id, state.offset, Readable.from([rest]), { length: rest.length });
      if (committed !== bytes.length) throw new Error(`append ended at ${committed} of ${bytes.length} bytes`);
      return { resumedAt: state.offset };
    } catch (err) {
      if (!(err instanceof StagedOffsetMismatch) && !(err instanceof ImageConflict)) throw err;
      await sleep(25);
    }
  }
  throw new Error('upload never resumed');
}
