// Names that reach the rbd/ceph command lines: pools, images, snapshots and cephx user ids. Each is
// checked against a narrow alphabet before it goes into argv, so a name can neither pose as an
// option ("-…") nor carry an image spec's separators ('/', '@') into another pool or snapshot.
import { z } from 'zod';

/** A name refused by its spelling: the same name is refused again. */
export class CephNameError extends Error {
  override readonly name = 'CephNameError';
  readonly retryable = false;
}

// Ceph itself allows more (any byte but '/' and '@' in image names), Nova's names fit in this:
// pools like "vms", images like "<uuid>_disk", snapshots like "snap-<uuid>".
const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
// cephx ids, without the "client." type prefix: "admin", "cinder", "nova".
const USER_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

export const PoolNameSchema = z.string().regex(NAME_RE, 'a pool name of [A-Za-z0-9_.-], at most 128 characters, not starting with "." or "-"');
export const ImageNameSchema = z.string().regex(NAME_RE, 'an image name of [A-Za-z0-9_.-], at most 128 characters, not starting with "." or "-"');
export const SnapNameSchema = z.string().regex(NAME_RE, 'a snapshot name of [A-Za-z0-9_.-], at most 128 characters, not starting with "." or "-"');
export const CephUserSchema = z
  .string()
  .regex(USER_RE, 'a cephx user id of [A-Za-z0-9_.-], at most 64 characters')
  .refine((id) => !id.startsWith('client.'), 'a cephx user id without the "client." prefix (--id adds it)');

function checked(schema: z.ZodType<string>, value: unknown, what: string): string {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new CephNameError(`invalid ${what} ${JSON.stringify(value)}: ${parsed.error.issues[0]?.message ?? 'refused'}`);
  return parsed.data;
}

/** An RBD image: its pool and its name. */
export interface ImageRef {
  pool: string;
  image: string;
}

export function checkImageRef(ref: ImageRef): ImageRef {
  return { pool: checked(PoolNameSchema, ref.pool, 'pool name'), image: checked(ImageNameSchema, ref.image, 'image name') };
}

export function checkSnapName(snap: string): string {
  return checked(SnapNameSchema, snap, 'snapshot name');
}

export function checkCephUser(user: string): string {
  return checked(CephUserSchema, user, 'cephx user id');
}

export function checkPoolName(pool: string): string {
  return checked(PoolNameSchema, pool, 'pool name');
}

/** "pool/image" or "pool/image@snap", from checked parts only. */
export function imageSpec(ref: ImageRef, snap?: string): string {
  const { pool, image } = checkImageRef(ref);
  return snap === undefined ? `${pool}/${image}` : `${pool}/${image}@${checkSnapName(snap)}`;
}

/** The "pool/image" libvirt writes as an rbd disk's source name, split and checked. */
export function parseImageSpec(spec: string): ImageRef {
  const parts = spec.split('/');
  if (parts.length !== 2) throw new CephNameError(`not a pool/image spec: ${JSON.stringify(spec)}`);
  return checkImageRef({ pool: parts[0] ?? '', image: parts[1] ?? '' });
}

// The RBD snapshots the host takes as an instance's points in time (incremental snapshots): the
// prefix says they are ours, the rest names the workflow run that took each, so a retried step
// finds the one its run made and retention never touches another tool's (Nova's, Cinder's, an
// operator's) snapshots.
const OUR_SNAP_PREFIX = 'snapsvc-run-';
const RUN_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const OUR_SNAP_RE = new RegExp(`^${OUR_SNAP_PREFIX}(${RUN_ID_RE.source.slice(1, -1)})$`);

/** Our snapshot's name for the run `runId` (a workflow run id: a UUID, written in lowercase). */
export function ourSnapName(runId: string): string {
  const id = runId.toLowerCase();
  if (!RUN_ID_RE.test(id)) throw new CephNameError(`invalid run id ${JSON.stringify(runId)}: a UUID`);
  return checkSnapName(`${OUR_SNAP_PREFIX}${id}`);
}

/** The run that took `snap` when the name is one of ours, else null (never ours to touch). */
export function runOfOurSnap(snap: string): string | null {
  return OUR_SNAP_RE.exec(snap)?.[1] ?? null;
}
