// A fault-injection point, off unless SNAP_TEST_BARRIER_DIR names a directory (as etcd's gofail
// points are off unless GOFAIL_FAILPOINTS names them): holds a step open so that a fault test can
// land its fault inside the step rather than beside it. Files, not memory, because the tests kill
// and restart the processes that wait here.
import { access, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { parseEnv } from '../config/env';

const StepSchema = z.string().regex(/^[a-z_]{1,40}$/);

const BarrierEnvSchema = z.object({
  /** a directory of `<step>.hold` / `<step>.reached` files; unset = no barrier at all */
  SNAP_TEST_BARRIER_DIR: z.string().min(1).optional(),
});

export class StepBarrier {
  constructor(private readonly dir: string) {}

  /** Marks `<step>.reached`, then waits while `<step>.hold` exists. */
  async hold(step: string): Promise<void> {
    const name = StepSchema.parse(step);
    await writeFile(join(this.dir, `${name}.reached`), `${process.pid}\n`);
    while (await exists(join(this.dir, `${name}.hold`))) await new Promise((r) => setTimeout(r, 100));
  }
}

/** The barrier the environment asks for, or undefined when SNAP_TEST_BARRIER_DIR is unset. */
export function stepBarrierFromEnv(env: NodeJS.ProcessEnv = process.env): StepBarrier | undefined {
  const dir = parseEnv(BarrierEnvSchema, env, 'step barrier').SNAP_TEST_BARRIER_DIR;
  return dir === undefined ? undefined : new StepBarrier(dir);
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
