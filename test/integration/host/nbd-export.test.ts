// The cold path's read-only export against real qemu-nbd: a qcow2 overlay on a qcow2 base served
// by a detached `qemu-nbd --fork`, read through our NbdClient and equal to `qemu-img convert`'s
// flattening of the chain; found by its pid file, refused twice on one socket, stopped for good;
// and a pid file naming an unrelated live process never gets that process killed.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { findReadOnlyExport, NbdExportError, startReadOnlyExport, stopReadOnlyExport } from '../../../src/host/nbd-export';
import { createQcow2, writePattern } from '../../../src/host/qemu-img';
import { runTool } from '../../../src/process/tool-process';
import { NbdClient } from '../../../src/nbd';
import type { DiskLayer } from '../../../src/contract';

const MiB = 1024 * 1024;
const SIZE = 16 * MiB;

let dir: string;
let overlay: string;
let flat: Buffer;
let baseLayer: DiskLayer[];
const started: { socketPath: string; pidFile: string }[] = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'nbd-export-'));
  const base = path.join(dir, 'base.qcow2');
  overlay = path.join(dir, 'disk.qcow2');
  await createQcow2(base, { sizeBytes: SIZE });
  await writePattern(base, { byte: 0x11, offset: 0, length: 4 * MiB });
  await writePattern(base, { byte: 0x22, offset: 8 * MiB, length: MiB });
  await createQcow2(overlay, { backing: base });
  baseLayer = [{ path: base, format: 'qcow2' }];
  // The overlay hides part of the base's data and adds its own past it.
  await writePattern(overlay, { byte: 0x33, offset: 2 * MiB, length: MiB });
  await writePattern(overlay, { byte: 0x44, offset: 12 * MiB, length: 64 * 1024 });
  const raw = path.join(dir, 'flat.raw');
  await runTool('qemu-img', ['convert', '-q', '-f', 'qcow2', '-O', 'raw', overlay, raw]);
  flat = await readFile(raw);
});

afterAll(async () => {
  for (const loc of started) await stopReadOnlyExport(loc).catch(() => undefined);
  if (dir) await rm(dir, { recursive: true, force: true });
});

function location(name: string): { socketPath: string; pidFile: string } {
  const loc = { socketPath: path.join(dir, `${name}.sock`), pidFile: path.join(dir, `${name}.pid`) };
  started.push(loc);
  return loc;
}

async function readAll(socketPath: string, exportName: string): Promise<{ size: number; readOnly: boolean; bytes: Buffer }> {
  const client = await NbdClient.connect({ socketPath, exportName });
  try {
    return { size: client.exportSize, readOnly: client.readOnly, bytes: await client.read(0, client.exportSize) };
  } finally {
    await client.close();
  }
}

/** Fields 5 and 6 of /proc/<pid>/stat: process group and session. */
async function groupAndSession(pid: number | 'self'): Promise<{ pgrp: number; session: number }> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { pgrp: Number(fields[2]), session: Number(fields[3]) };
}

async function isGone(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // a zombie until init reaps it: it no longer runs
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return true;
  }
}

it('serves the chain read-only, detached from our session, found by its pid file, refused twice, stopped for good', async () => {
  const loc = location('cold');
  const { pid } = await startReadOnlyExport({ diskPath: overlay, format: 'qcow2', backing: baseLayer, exportName: 'vda', ...loc });
  expect(pid).toBeGreaterThan(1);
  expect((await readFile(loc.pidFile, 'utf8')).trim()).toBe(String(pid));

  const served = await readAll(loc.socketPath, 'vda');
  expect(served.size).toBe(SIZE);
  expect(served.readOnly).toBe(true);
  expect(served.bytes.equals(flat)).toBe(true);

  // Its own session and group: a signal to the worker's process group does not reach it.
  const ours = await groupAndSession('self');
  const its = await groupAndSession(pid);
  expect(its.session).not.toBe(ours.session);
  expect(its.pgrp).not.toBe(ours.pgrp);

  expect(await findReadOnlyExport(loc)).toBe(pid);

  // The same socket again, with the same pid file or another one: refused, and the first goes on serving.
  const again = await startReadOnlyExport({ diskPath: overlay, format: 'qcow2', backing: baseLayer, exportName: 'vda', ...loc }).catch((e: unknown) => e);
  expect(again).toBeInstanceOf(NbdExportError);
  expect(again).toMatchObject({ code: 'busy', retryable: true });
  const stealer = await startReadOnlyExport({ diskPath: overlay, format: 'qcow2', backing: baseLayer, exportName: 'vda', socketPath: loc.socketPath, pidFile: path.join(dir, 'other.pid') }).catch(
    (e: unknown) => e,
  );
  expect(stealer).toMatchObject({ code: 'busy' });
  expect(existsSync(path.join(dir, 'other.pid'))).toBe(false);
  expect((await readAll(loc.socketPath, 'vda')).bytes.equals(flat)).toBe(true);

  expect(await stopReadOnlyExport(loc)).toEqual({ stopped: true });
  expect(await isGone(pid)).toBe(true);
  expect(existsSync(loc.socketPath)).toBe(false);
  expect(existsSync(loc.pidFile)).toBe(false);
  expect(await findReadOnlyExport(loc)).toBeUndefined();
  // Idempotent.
  expect(await stopReadOnlyExport(loc)).toEqual({ stopped: false });
});

it('exports a raw disk as raw, never probing it', async () => {
  const loc = location('raw');
  const raw = path.join(dir, 'flat.raw');
  await startReadOnlyExport({ diskPath: raw, format: 'raw', backing: [], exportName: 'sda', ...loc });
  expect((await readAll(loc.socketPath, 'sda')).bytes.equals(flat)).toBe(true);
  await stopReadOnlyExport(loc);
});

it('a pid file naming an unrelated live process: not found, and the process is not killed', async () => {
  const loc = location('stale');
  const sleeper: ChildProcess = spawn('sleep', ['60'], { stdio: 'ignore' });
  try {
    const pid = sleeper.pid;
    if (pid === undefined) throw new Error('sleep did not start');
    await writeFile(loc.pidFile, `${pid}\n`);
    await writeFile(loc.socketPath, '');
    expect(await findReadOnlyExport(loc)).toBeUndefined();
    expect(await stopReadOnlyExport(loc, { graceMs: 200 })).toEqual({ stopped: false });
    expect(sleeper.exitCode).toBeNull();
    expect(sleeper.signalCode).toBeNull();
    expect(await isGone(pid)).toBe(false);
    // Both files were stale: nothing served them.
    expect(existsSync(loc.pidFile)).toBe(false);
    expect(existsSync(loc.socketPath)).toBe(false);
  } finally {
    sleeper.kill('SIGKILL');
  }
});

it('typed refusals: a bad export name or path before anything runs, an aborted start, a missing disk from qemu-nbd', async () => {
  const loc = location('bad');
  await expect(startReadOnlyExport({ diskPath: overlay, format: 'qcow2', backing: baseLayer, exportName: 'a/b', ...loc })).rejects.toMatchObject({ code: 'invalid-spec', retryable: false });
  await expect(startReadOnlyExport({ diskPath: 'disk.qcow2', format: 'qcow2', backing: baseLayer, exportName: 'vda', ...loc })).rejects.toMatchObject({ code: 'invalid-spec', retryable: false });
  await expect(startReadOnlyExport({ diskPath: overlay, format: 'qcow2', backing: baseLayer, exportName: 'vda', socketPath: `${dir}/${'s'.repeat(120)}.sock`, pidFile: loc.pidFile })).rejects.toMatchObject({
    code: 'invalid-spec',
  });
  const reason = new Error('activity cancelled');
  await expect(startReadOnlyExport({ diskPath: overlay, format: 'qcow2', backing: baseLayer, exportName: 'vda', ...loc, signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
  expect(existsSync(loc.socketPath)).toBe(false);
  const missing = await startReadOnlyExport({ diskPath: path.join(dir, 'missing.qcow2'), format: 'qcow2', backing: [], exportName: 'vda', ...loc }).catch((e: unknown) => e);
  expect(missing).toBeInstanceOf(NbdExportError);
  expect(missing).toMatchObject({ code: 'start-failed' });
  expect(existsSync(loc.socketPath)).toBe(false);
});
