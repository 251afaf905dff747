// Throw-away PostgreSQL server for integration tests: initdb into a mkdtemp dir, start on a free
// loopback port with its unix socket inside that dir, stop and delete on teardown. Uses the
// distribution binaries (Debian: package postgresql-15 → /usr/lib/postgresql/15/bin). Postgres
// refuses to run as root, so as root every command runs as the `postgres` user via runuser.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { appendFile, chown, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './free-port';

const run = promisify(execFile);

export class PostgresUnavailable extends Error {
  override readonly name = 'PostgresUnavailable';
}

export interface TestPostgres {
  /** postgresql://postgres@127.0.0.1:<port>/postgres */
  connectionString: string;
  port: number;
  stop(): Promise<void>;
}

const RUN_AS = 'postgres';

/** Directory holding initdb/pg_ctl: $PG_BIN_DIR, else the newest /usr/lib/postgresql/<n>/bin. */
export function findPostgresBinDir(): string {
  const fromEnv = process.env.PG_BIN_DIR;
  if (fromEnv !== undefined && existsSync(join(fromEnv, 'initdb'))) return fromEnv;
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => /^\d+$/.test(v) && existsSync(join(root, v, 'bin', 'initdb')))
        .sort((x, y) => Number(y) - Number(x))
    : [];
  const newest = versions[0];
  if (newest === undefined) {
    throw new PostgresUnavailable(
      'PostgreSQL server binaries not found (looked in $PG_BIN_DIR and /usr/lib/postgresql/<version>/bin). ' +
        'Install them with `apt-get install -y postgresql-15` (Debian) or point PG_BIN_DIR at a directory with initdb and pg_ctl.',
    );
  }
  return join(root, newest, 'bin');
}

async function ownerIds(): Promise<{ uid: number; gid: number } | undefined> {
  if (userInfo().uid !== 0) return undefined;
  try {
    const [uid, gid] = await Promise.all([run('id', ['-u', RUN_AS]), run('id', ['-g', RUN_AS])]);
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  } catch {
    throw new PostgresUnavailable(`running as root but there is no '${RUN_AS}' user to run PostgreSQL as (it refuses root)`);
  }
}

/** argv for a PostgreSQL binary, wrapped in runuser when we are root. */
function command(asRoot: boolean, bin: string, args: string[]): [string, string[]] {
  return asRoot ? ['runuser', ['-u', RUN_AS, '--', bin, ...args]] : [bin, args];
}

export async function startTestPostgres(): Promise<TestPostgres> {
  const binDir = findPostgresBinDir();
  const owner = await ownerIds();
  const asRoot = owner !== undefined;
  const dir = await mkdtemp(join(tmpdir(), 'snap-pg-'));
  const dataDir = join(dir, 'data');
  const logFile = join(dir, 'postgres.log');
  const exec = async (bin: string, args: string[]): Promise<void> => {
    const [file, argv] = command(asRoot, join(binDir, bin), args);
    await run(file, argv, { cwd: dir, timeout: 120_000 });
  };
  try {
    if (owner !== undefined) await chown(dir, owner.uid, owner.gid);
    await exec('initdb', ['-D', dataDir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
    // Settings go into postgresql.conf rather than pg_ctl -o, which pg_ctl hands to a shell.
    // A port taken between freePort() and start-up makes pg_ctl fail; retry with another.
    for (let attempt = 1; ; attempt += 1) {
      const port = await freePort();
      await appendFile(
        join(dataDir, 'postgresql.conf'),
        `\nport = ${port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '${dir}'\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 120\n`,
      );
      try {
        await exec('pg_ctl', ['-D', dataDir, '-l', logFile, '-w', '-t', '60', 'start']);
      } catch (err) {
        if (attempt < 3) continue;
        const log = await readFile(logFile, 'utf8').catch(() => '');
        throw new PostgresUnavailable(`pg_ctl start failed: ${String(err)}\n${log}`);
      }
      return {
        port,
        connectionString: `postgresql://postgres@127.0.0.1:${port}/postgres`,
        async stop() {
          await exec('pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', 'stop']).catch(() => undefined);
          await rm(dir, { recursive: true, force: true });
        },
      };
    }
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
