// An engine whose workers use a real Glance (behind a real Keystone, as the service user), counting
// the bytes the host sends to it, and whose host worker hands Glance a direct snapshot's copy when
// Glance stores images in `glancePool` of the same cluster (SNAP_GLANCE_RBD_POOL). One setup for the
// direct-snapshot test and bench:rbd's direct row.
import { GlanceHttpClient } from '../../../src/images/client';
import { countingImages, type SentBytes } from '../counting-images';
import { startEngine, type Engine } from '../engine-harness';
import type { RunningGlance } from './glance';
import type { KeystoneUser, RunningKeystone } from './keystone';

export interface GlanceEngine {
  engine: Engine;
  /** what the host worker has sent to Glance so far */
  sent: SentBytes;
}

export async function startGlanceEngine(keystone: RunningKeystone, service: KeystoneUser, glance: RunningGlance, hostEnv: Record<string, string>, glancePool: string): Promise<GlanceEngine> {
  const auth = keystone.authenticatorFor(service);
  const sent: SentBytes = { bytes: 0 };
  const images = countingImages(new GlanceHttpClient(glance.url, () => auth.serviceToken()), sent);
  const engine = await startEngine({ hostEnv: { ...hostEnv, SNAP_GLANCE_RBD_POOL: glancePool }, images });
  return { engine, sent };
}
