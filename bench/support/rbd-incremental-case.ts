// The "incremental from rbd diff" case of the RBD benchmarks (issue 23): on a running RBD-backed
// guest (the caller's engine runs with the cluster's SNAP_RBD_* settings and change tracking on), a
// base snapshot (it takes the RBD snapshot the diff starts from), then `changedMiB` MiB overwritten
// by the guest, then the timed incremental. Answers what the incremental sent against what the
// guest changed; throws when the second snapshot is not an incremental over the first, or its
// image is not the very bytes of the RBD snapshot it was read from (the measurement would be void).
import { rm } from 'node:fs/promises';
import { RbdClient, runOfOurSnap } from '../../src/ceph';
import type { SnapshotResult } from '../../src/contract';
import { runToolOutput } from '../../src/process/tool-process';
import { rbdTarget } from '../../src/testing/instance-lifecycle';
import type { Engine } from '../../test/support/engine-harness';
import { guestWrites, settle } from '../../test/support/guest/chain-checks';
import { downloadImage } from '../../test/support/image-bytes';
import type { InstanceFixture } from '../../test/support/instance-fixture';

const MiB = 1024 ** 2;

export interface RbdIncrementalCase {
  /** the incremental snapshot, request to active image */
  seconds: number;
  /** guest data the incremental read and sent (its changedBytes) */
  bytesSent: number;
  /** what the guest overwrote between the two snapshots */
  bytesChanged: number;
  /** the base snapshot's time, for the table's context */
  baseSeconds: number;
}

async function timedSnapshot(engine: Engine, uuid: string, name: string): Promise<{ result: SnapshotResult; seconds: number }> {
  const started = process.hrtime.bigint();
  const { result } = await engine.startSnapshot(uuid, name);
  const value = await result;
  return { result: value, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}

/** Base snapshot, `changedMiB` MiB overwritten at `atMiB` of /mnt/<file> in the guest, timed incremental. */
export async function runRbdIncrementalCase(engine: Engine, fixture: InstanceFixture, options: { changedMiB?: number; atMiB?: number; file?: string } = {}): Promise<RbdIncrementalCase> {
  const disk = fixture.instance.rbd;
  if (disk === null) throw new Error(`${fixture.instance.name} has no RBD disk`);
  const changedMiB = options.changedMiB ?? 16;
  const uuid = (await engine.register(fixture)).uuid;
  await settle(fixture);
  const base = await timedSnapshot(engine, uuid, 'bench-rbd-base');
  await guestWrites(fixture, options.file ?? 'rbd-incremental.bin', changedMiB, options.atMiB ?? 0);
  await settle(fixture);
  const inc = await timedSnapshot(engine, uuid, 'bench-rbd-incremental');
  if (inc.result.kind !== 'incremental' || inc.result.parentImageId !== base.result.imageId) {
    throw new Error(`expected an incremental over ${base.result.imageId}, got ${inc.result.kind ?? 'no kind'} (${inc.result.fullReason ?? ''})`);
  }
  const ours = (await new RbdClient({ confPath: disk.confPath, user: disk.user }).snapList(disk)).map((s) => s.name).filter((n) => runOfOurSnap(n) !== null);
  if (ours.length !== 1) throw new Error(`expected one RBD snapshot of ours after the incremental, found ${ours.length}`);
  const file = await downloadImage(engine.images, inc.result.imageId, fixture.dir);
  const compared = await runToolOutput('qemu-img', ['compare', '-q', '-f', 'raw', '-F', 'raw', file, rbdTarget({ ...disk, image: `${disk.image}@${ours[0] ?? ''}` })], { okExitCodes: [0, 1] }).finally(() =>
    rm(file, { force: true }),
  );
  if (compared.exitCode !== 0) throw new Error(`the incremental image ${inc.result.imageId} differs from its RBD snapshot: the measurement is void`);
  return { seconds: inc.seconds, bytesSent: inc.result.changedBytes ?? 0, bytesChanged: changedMiB * MiB, baseSeconds: base.seconds };
}
