// Starts the image service over real HTTP on an ephemeral port in a throw-away data dir.
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { startImageServer, type RunningImageServer } from '../../../src/images';
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
