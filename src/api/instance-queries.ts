// Read-only queries the instance store does not offer (admin's all-project listing, host summary).
// They take the store's Kysely handle so the store's files stay untouched; the rows go through the
// store's own row mapping, so a corrupt row fails here exactly as it would there.
import { instanceFromRow, type Instance, type StoreDb } from '../store';

export async function listAllInstances(db: StoreDb): Promise<Instance[]> {
  const rows = await db.selectFrom('instances').selectAll().where('deleted', '=', 0).orderBy('created_at').orderBy('uuid').execute();
  return rows.map(instanceFromRow);
}

export interface HostSummary {
  host: string;
  servers: number;
  busy: number;
}

/** Hosts known from the live instances, with how many instances each runs and how many have a task in progress. */
export async function listHosts(db: StoreDb): Promise<HostSummary[]> {
  const rows = await db
    .selectFrom('instances')
    .select((eb) => ['host', eb.fn.countAll<number>().as('servers'), eb.fn.count<number>('task_state').as('busy')])
    .where('deleted', '=', 0)
    .groupBy('host')
    .orderBy('host')
    .execute();
  return rows.map((r) => ({ host: r.host, servers: Number(r.servers), busy: Number(r.busy) }));
}
