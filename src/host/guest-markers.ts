// The records a cold run keeps in its work dir of a guest it holds out of its prior power state, so
// that whatever ends the run (a terminate runs no compensation) the host's work-dir sweep
// (src/reconciler/workdir-sweeper.ts) can give the guest back, and only a guest a run held:
//
// - `saved`: written before the run's managedSave (cold-snapshot.ts), it names the domain and the
//   power state to bring it back to; it goes when the guest is back (the restore, or the sweep).
// - `restartedPaused`: written before the run starts the saved guest again paused to cut it with a
//   backup job (saved-guest-restart.ts); it goes when the run resumes the guest.
//
// A guest managed-saved or paused by an operator has no marker, and the sweep never touches it.
// Each marker is written whole or not at all (a torn one could not name its guest).
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { z } from 'zod';
import { errnoCode, PowerStateSchema } from '../contract';
import { writeFileAtomic } from '../fs/atomic-file';
import type { Domain } from '../libvirt';
import { exportPaths, type ExportPaths } from './export-paths';

const NamedDomainSchema = z.object({ domainUuid: z.string().uuid(), domainName: z.string().min(1).max(255) });
const SavedGuestSchema = NamedDomainSchema.extend({ powerState: PowerStateSchema });

const MARKERS = {
  saved: { path: (p: ExportPaths) => p.savedGuest, schema: SavedGuestSchema },
  restartedPaused: { path: (p: ExportPaths) => p.restartedGuest, schema: NamedDomainSchema },
} as const;

export type GuestHold = keyof typeof MARKERS;
export type GuestMarker<H extends GuestHold> = z.infer<(typeof MARKERS)[H]['schema']>;
export type SavedGuestMarker = GuestMarker<'saved'>;
const HOLDS = Object.keys(MARKERS) as GuestHold[];

function markerPath(workDir: string, hold: GuestHold): string {
  return MARKERS[hold].path(exportPaths(workDir));
}

/** The domain as a marker names it. */
export function namedDomain(dom: Domain): GuestMarker<'restartedPaused'> {
  return { domainUuid: dom.uuid, domainName: dom.name };
}

/** Records that the work dir's run holds the guest so; written before the act that holds it. */
export async function writeGuestMarker<H extends GuestHold>(workDir: string, hold: H, marker: GuestMarker<H>): Promise<void> {
  const named = MARKERS[hold].schema.parse(marker);
  await writeFileAtomic(markerPath(workDir, hold), `${JSON.stringify(named)}\n`);
}

/** The marker, or null when the run does not hold its guest so. Throws on one that names no domain. */
export async function readGuestMarker<H extends GuestHold>(workDir: string, hold: H): Promise<GuestMarker<H> | null> {
  let named: unknown;
  try {
    named = JSON.parse(await readFile(markerPath(workDir, hold), 'utf8'));
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return null;
    named = undefined;
  }
  const parsed = MARKERS[hold].schema.safeParse(named);
  // Kept for an operator to look at: which guest it held is not known.
  if (!parsed.success) throw new Error(`the ${hold} guest marker in ${workDir} does not name a domain`);
  return parsed.data as GuestMarker<H>;
}

/** Whether the work dir's run holds its guest so (any way, without `hold`). */
export function holdsGuest(workDir: string, hold?: GuestHold): boolean {
  return (hold === undefined ? HOLDS : [hold]).some((h) => existsSync(markerPath(workDir, h)));
}

/** The run holds its guest so no longer (every way, without `hold`); idempotent. */
export async function removeGuestMarkers(workDir: string, hold?: GuestHold): Promise<void> {
  for (const h of hold === undefined ? HOLDS : [hold]) await rm(markerPath(workDir, h), { force: true });
}
