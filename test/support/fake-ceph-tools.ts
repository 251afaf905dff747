// Fake `rbd`/`ceph` tools for the Ceph client's unit tests: each records its argv and answers what
// the test tells it to (stdout, stderr, exit code, or a sleep past the deadline).
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

const FAKE = `#!/bin/sh
FAKE_DIR=$(dirname "$0")
printf '%s\\n' "$@" > "$FAKE_DIR/argv"
[ -f "$FAKE_DIR/sleep" ] && exec sleep "$(cat "$FAKE_DIR/sleep")"
[ -f "$FAKE_DIR/stderr" ] && cat "$FAKE_DIR/stderr" >&2
[ -f "$FAKE_DIR/stdout" ] && cat "$FAKE_DIR/stdout"
exit "$(cat "$FAKE_DIR/exit" 2>/dev/null || echo 0)"
`;

export interface FakeCephTools {
  /** the directory holding the fake tools (a CephConnection's toolDir) */
  dir: string;
  argvFile: string;
  answer(stdout: string, opts?: { exit?: number; stderr?: string }): Promise<void>;
  /** the argv of the last command run */
  argv(): Promise<string[]>;
}

/** Registers the fake tools for the test file (made in beforeAll, answers reset before each test). */
export function useFakeCephTools(): () => FakeCephTools {
  let fake: FakeCephTools | undefined;
  beforeAll(async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'snap-fake-ceph-'));
    for (const tool of ['rbd', 'ceph']) {
      await writeFile(path.join(dir, tool), FAKE);
      await chmod(path.join(dir, tool), 0o755);
    }
    const argvFile = path.join(dir, 'argv');
    fake = {
      dir,
      argvFile,
      async answer(stdout, opts = {}) {
        await writeFile(path.join(dir, 'stdout'), stdout);
        if (opts.exit !== undefined) await writeFile(path.join(dir, 'exit'), String(opts.exit));
        if (opts.stderr !== undefined) await writeFile(path.join(dir, 'stderr'), opts.stderr);
      },
      async argv() {
        return (await readFile(argvFile, 'utf8')).split('\n').slice(0, -1);
      },
    };
  });
  afterAll(async () => {
    if (fake !== undefined) await rm(fake.dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    if (fake === undefined) return;
    for (const f of ['argv', 'stdout', 'stderr', 'exit', 'sleep']) await rm(path.join(fake.dir, f), { force: true });
  });
  return () => {
    if (fake === undefined) throw new Error('the fake ceph tools are not made (beforeAll failed)');
    return fake;
  };
}
