// The multi-node tests run the control plane on PostgreSQL: Debian's server binaries, started by
// the tests themselves in private data dirs. Installed on a test machine when missing.
import { existsSync, readdirSync } from 'node:fs';
import { aptInstall } from './run.mjs';

function hasPostgresBinaries() {
  if (process.env.PG_BIN_DIR) return existsSync(`${process.env.PG_BIN_DIR}/initdb`);
  if (!existsSync('/usr/lib/postgresql')) return false;
  return readdirSync('/usr/lib/postgresql').some((v) => existsSync(`/usr/lib/postgresql/${v}/bin/initdb`));
}

export function ensurePostgresBinaries() {
  if (hasPostgresBinaries()) return;
  aptInstall(['postgresql'], 'PostgreSQL server binaries are missing (or set PG_BIN_DIR)');
}
