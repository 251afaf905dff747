// Standalone image service process: `tsx src/images/service/server-main.ts`. Configured by SNAP_IMAGE_*
// environment variables; the same identity source as the compute API (src/auth: the token file, or
// Keystone) guards it, unless SNAP_IMAGE_AUTH=none (a test bench with no tokens at all).
import { z } from 'zod';
import { identitySourceFromEnv, imageServiceAuthenticator } from '../../auth';
import { createLogger, logLevelFromEnv } from '../../observability';
import { runMain } from '../../process/run-main';
import { imageLimitsFromEnv } from './image-limits-config';
import { imageServerConfigFromEnv } from './image-server-config';
import { startImageServer } from './image-server';
import { storeBackendFromEnv } from './store-backend-config';
import { s3StoreBackend } from '../store/s3-store';

const log = createLogger({ name: 'image-service', level: logLevelFromEnv() });

runMain(
  'image service',
  async () => {
    const config = imageServerConfigFromEnv(process.env);
    const limits = imageLimitsFromEnv(process.env);
    const authMode = z.enum(['tokens', 'none']).default('tokens').parse(process.env.SNAP_IMAGE_AUTH);
    const authenticate = authMode === 'none' ? undefined : imageServiceAuthenticator((await identitySourceFromEnv()).source);
    const shared = await storeBackendFromEnv(process.env);
    const sharedStore = shared === undefined ? undefined : s3StoreBackend(shared.location, shared.graceMs, shared.putsInFlight);
    const server = await startImageServer({
      ...config,
      ...limits,
      authenticate,
      sharedStore,
      sharedStoreSweepMs: shared?.sweepMs,
      sharedRecordsTtlMs: shared?.recordsTtlMs,
      warn: (details, message) => log.warn(details, message),
      onRequestError: (err) => log.error({ err }, 'request failed'),
    });
    log.info({ url: server.url, dataDir: config.dataDir, store: sharedStore?.name ?? 'local', recovery: server.recovery, auth: authMode, limits }, 'image service listening');
    return {
      stop: async () => {
        await server.close();
        sharedStore?.close();
      },
    };
  },
  log,
);
