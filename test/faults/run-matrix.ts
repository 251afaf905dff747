// `npm run faults [-- --faults a,b --modes m --steps s --parallel n --no-docs]`: the whole fault
// matrix over real processes, libvirtd and QEMU. Prints fault × step × mode → outcome and time to
// recover, writes the table of a full run into docs/faults.md. Exit 1 when any cell is off.
// Cells run on `--parallel` independent stacks (default 2): most of a cell is waiting out a
// heartbeat or start-to-close timeout, not CPU. libvirtd restarts hit the one system daemon that
// every stack shares, so those cells run last, one at a time, with the other stacks idle.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { errorStack } from '../../src/contract';
import { PROJECT_ROOT } from '../../src/temporal/dev-server';
import { describeCell, runCell, type Cell, type CellResult } from '../support/fault-cell';
import { FAULTS, MODES, RBD_FAULTS, STEPS, VOLUME_FAULTS, notApplicable } from '../support/fault-matrix';
import { startFaultStack, type FaultStack, type FaultStackOptions } from '../support/fault-stack';
import { RBD_STREAM_LIMIT_MIBS } from '../support/fault-cell';
import { defineClusterSecret, rbdGuestsOn } from '../support/rbd-guest';
import { startCephCluster } from '../../src/testing/ceph/ceph-cluster';
import { startCinder } from '../support/openstack/cinder';
import { defineCinderSecret, volumeGuestsOn } from '../support/volume-guest';
import { VOLUME_STACK_ENV } from '../support/volume-fault-cell';
import { machineFacts, matrixTable, summary } from './matrix-report';

const list = <T extends string>(all: readonly [T, ...T[]]) =>
  z
    .string()
    .transform((s) => s.split(',').filter(Boolean))
    .pipe(z.array(z.enum(all)));

const ArgsSchema = z.object({
  faults: list(FAULTS).optional(),
  modes: list(MODES).optional(),
  steps: list(STEPS).optional(),
  parallel: z.coerce.number().int().min(1).max(4).default(2),
  docs: z.boolean().default(true),
});

function parseArgs(argv: readonly string[]): z.infer<typeof ArgsSchema> {
  const raw: Record<string, string | boolean> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--no-docs') raw.docs = false;
    else if (arg.startsWith('--')) raw[arg.slice(2)] = argv[++i] ?? '';
    else throw new Error(`unexpected argument ${arg}`);
  }
  return ArgsSchema.parse(raw);
}

async function runQueue(stack: FaultStack, queue: Cell[], results: CellResult[]): Promise<void> {
  for (let cell = queue.shift(); cell; cell = queue.shift()) {
    const result = await runCell(stack, cell);
    results.push(result);
    process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${describeCell(result)}\n`);
  }
}

/** Cells one at a time on a stack of their own. */
async function runOnOwnStack(options: FaultStackOptions, cells: Cell[], results: CellResult[]): Promise<void> {
  const stack = await startFaultStack(options);
  try {
    await runQueue(stack, cells, results);
  } finally {
    await stack.stop();
  }
}

/** The RBD cells, one at a time, on a stack of their own over one single-node Ceph started for them. */
async function runRbdCells(cells: Cell[], results: CellResult[]): Promise<void> {
  const cluster = await startCephCluster();
  try {
    const secret = await defineClusterSecret(cluster);
    try {
      await runOnOwnStack({ rbd: rbdGuestsOn(cluster, secret.uuid), hostEnv: { SNAP_STREAM_BWLIMIT_MIBS: String(RBD_STREAM_LIMIT_MIBS) } }, cells, results);
    } finally {
      await secret.remove();
    }
  } finally {
    await cluster.stop();
  }
}

/** The volume-backed cells, one at a time, on a stack of their own over one Ceph and one Cinder started for them. */
async function runVolumeCells(cells: Cell[], results: CellResult[]): Promise<void> {
  const cluster = await startCephCluster();
  try {
    const cinder = await startCinder(cluster);
    try {
      const secret = await defineCinderSecret(cinder);
      try {
        await runOnOwnStack({ volumes: volumeGuestsOn(cluster, cinder, secret), ...VOLUME_STACK_ENV }, cells, results);
      } finally {
        await secret.remove();
      }
    } finally {
      await cinder.stop();
    }
  } finally {
    await cluster.stop();
  }
}

/** What the volume-backed cells are, for the full run's docs. */
const VOLUME_FAULTS_TEXT = [
  '- V1–V6: Nova\'s snapshot_volume_backed of a running guest booting from a Cinder volume on RBD (one Ceph',
  '  and one Cinder for them all, a project of its own per guest; the run\'s deadline for `available`',
  '  40 s, the freeze bounded at 3 s). V1a: cinder-volume stopped as the create calls go out, back 3 s',
  '  later. V1b: stopped past the deadline, back while the compensation waits. V2: RabbitMQ stopped as the',
  '  calls go out, back 5 s later. V3: cinder-volume hung (SIGSTOP) past the deadline, resumed while the',
  '  compensation waits. V4a/b: the project\'s snapshot quota set full before the plan\'s check, or after it',
  '  (Cinder\'s 413 on the create call). V5a/b: kill -9 of the host worker after its create calls, before',
  '  it reported them, or of the control worker before the image step; back 3 s later. V6a/b: the guest',
  '  agent stopped before the freeze, without and with `os_require_quiesce`. Their checks: no snapshot of',
  '  a failed run left in Cinder, a completed run\'s exactly the one its image names (available, of the',
  '  volume), the project\'s snapshot usage equal to what Cinder holds and to before plus the run\'s, no',
  '  image not active, the guest running and writing (never left frozen), task_state None.',
];

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const cells: Cell[] = [];
  for (const fault of args.faults ?? FAULTS) for (const mode of args.modes ?? MODES) for (const step of args.steps ?? STEPS) cells.push({ fault, mode, step });
  const results: CellResult[] = cells.filter((c) => notApplicable(c.mode, c.step, c.fault) !== null).map((c) => ({ ...c, outcome: 'n/a', ok: true, violations: [] }));
  const runnable = cells.filter((c) => notApplicable(c.mode, c.step, c.fault) === null);
  // Long waits first, so the stacks finish together; grouped by mode to spare host-worker restarts.
  const weight = (c: Cell) => (c.fault === 'host-kill-long' ? 3 : c.fault === 'host-kill' || c.fault === 'control-kill' ? 2 : 1);
  const onRbd = runnable.filter((c) => RBD_FAULTS.includes(c.fault));
  const onCinder = runnable.filter((c) => VOLUME_FAULTS.includes(c.fault));
  const shared = runnable.filter((c) => c.fault !== 'libvirtd-restart' && !RBD_FAULTS.includes(c.fault) && !VOLUME_FAULTS.includes(c.fault)).sort((a, b) => weight(b) - weight(a) || a.mode.localeCompare(b.mode));
  const exclusive = runnable.filter((c) => c.fault === 'libvirtd-restart');

  const started = Date.now();
  const stacks: FaultStack[] = [];
  try {
    const wanted = shared.length + exclusive.length === 0 ? 0 : Math.min(args.parallel, Math.max(1, shared.length));
    process.stdout.write(
      `fault matrix: ${runnable.length} cells, ${shared.length} on ${wanted} stack(s), then ${onRbd.length} on RBD and ${onCinder.length} volume-backed on stacks of their own, then ${exclusive.length} libvirtd restarts\n`,
    );
    for (let i = 0; i < wanted; i++) stacks.push(await startFaultStack());
    await Promise.all(stacks.map((stack) => runQueue(stack, shared, results)));
    if (onRbd.length > 0) await runRbdCells(onRbd, results);
    if (onCinder.length > 0) await runVolumeCells(onCinder, results);
    if (stacks[0]) await runQueue(stacks[0], exclusive, results);
  } finally {
    for (const stack of stacks) await stack.stop();
  }

  const minutes = ((Date.now() - started) / 60_000).toFixed(1);
  const table = matrixTable(results);
  const line = summary(results);
  process.stdout.write(`\n${table}\n\n${line} (${minutes} min)\n`);
  const full = args.faults === undefined && args.modes === undefined && args.steps === undefined;
  if (args.docs && full) {
    const doc = [
      '# Fault matrix: last full run',
      '',
      'Generated by `npm run faults` (test/faults/run-matrix.ts); do not edit by hand. Each cell: a',
      'fresh throw-away guest in the mode, the step held open by the test barrier, the fault injected',
      'inside it, then the end state checked against the real services: image active and identical to',
      'the disk by `qemu-img compare` when completed, no image left that is not active, task_state None',
      "(or Nova's `deleting` when the test deleted the instance), the guest in its prior power state,",
      'no managed-save image, no block job, nothing under the snapshots dir, no workflow open.',
      'Time = from the fault to the workflow closing. ✔ = expected outcome and every check held.',
      '',
      `Run ${new Date().toISOString()} in ${minutes} min on ${args.parallel} parallel stack(s): ${line}.`,
      '',
      '## Machine',
      '',
      await machineFacts(),
      '',
      '## Table',
      '',
      table,
      '',
      '## What the faults are',
      '',
      '- host / control worker kill -9: SIGKILL of the process group, restarted 3 s later (the host',
      '  worker\'s qemu-img children die with it). 1b: away 135 s (> the 2 min start-to-close of the',
      '  inspection steps) or 45 s (> the 30 s heartbeat timeout that bounds a dead extract attempt).',
      '- Temporal: SIGKILL of the dev server, restarted 2 s later on the same port and SQLite database.',
      '- libvirtd: SIGTERM to the pid in /run/libvirtd.pid, `libvirtd -d`; during extract the step is',
      '  released 0.3 s before the restart so its calls are in flight. Only steps that use libvirt.',
      '- instance deleted: task_state `deleting`, domain destroyed and undefined with its managed save.',
      '- image service: SIGKILL, back 3 s later; or a proxy in front of it answering 503 to every upload.',
      '- snapshots dir full: a 4 MiB tmpfs mounted on it with 64 KiB left free.',
      '- R1–R3: live snapshots of a guest whose root disk is in a single-node Ceph (Nova\'s',
      '  `images_type=rbd`), on a stack of their own whose stream is capped at 4 MiB/s after the guest',
      '  wrote 24 MiB, so the stream lasts seconds. R1: the host worker SIGKILLed 2.5 s into the stream,',
      '  back 3 s later; the new worker must resume from the committed length. R2: the OSD SIGKILLed',
      '  2.5 s into the stream, restarted 5 s later (QEMU\'s librbd resends; the reads wait meanwhile).',
      '  R3: the mon stopped (SIGSTOP) for 30 s from the start of the domain lookup, whose `rbd info`',
      '  then waits: each attempt ends at the step\'s 20 s start-to-close and the retries (10, backoff',
      '  from 1 s) outlast the mon\'s absence, so the run completes. The live data path is the build\'s',
      '  (with change tracking on, the run\'s own RBD snapshot read by qemu-nbd). Their checks add the',
      '  cluster: of ours only the RBD snapshot the newest chain row records (`rbd snap ls`), none of a',
      '  failed run\'s, no image in `vms` or `images` but the disk (`rbd ls`).',
      ...VOLUME_FAULTS_TEXT,
      '',
      'n/a cells are left out of the table: the block-job probe only exists in live mode, the',
      'managedSave and the recreate only in cold modes, image faults only in upload, a full disk',
      'only in extract, the RBD faults in live mode at their one step.',
      '',
      'A run terminated in Temporal (no compensation runs) is not a cell: its end state waits for the',
      "host's work-dir sweep. A cold run terminated after its managedSave, or between restarting its",
      'guest paused and resuming it, leaves a marker naming the guest; the sweep brings the guest back',
      'and leaves a guest saved by hand saved (README, "A run that ends holding its guest";',
      '`test/integration/guest/saved-guest-sweep.test.ts`, `cold-restart-real-guest.test.ts`).',
      '',
    ].join('\n');
    await writeFile(join(PROJECT_ROOT, 'docs', 'faults.md'), doc);
    process.stdout.write('written: docs/faults.md\n');
  }
  process.exitCode = results.every((r) => r.ok) ? 0 : 1;
}

main().catch((err: unknown) => {
  process.stderr.write(`fault matrix failed: ${errorStack(err)}\n`);
  process.exit(1);
});
