// Compute API process: `tsx src/api/main.ts`. Configured by SNAP_API_* / SNAP_* / TEMPORAL_* env
// (see api-config.ts, auth-config.ts, keystone-config.ts and README.md); prints the tokens when it
// generated them.
// Shutdown (SIGTERM/SIGINT, or the parent's pipe closing under `npm start`) finishes in-flight requests.
import { describeTokens, identitySourceFromEnv, keystoneServiceOptionsFromEnv } from '../auth';
import { catalogVolumeRoot } from '../cinder';
import { createLogger, logLevelFromEnv } from '../observability';
import { runMain } from '../process/run-main';
import { apiConfigFromEnv } from './api-config';
import { startApi } from './api-server';
import { keystoneTrustDelegator } from './volume-trust';

const log = createLogger({ name: 'compute-api', level: logLevelFromEnv() });

runMain(
  'compute API',
  async () => {
    const config = apiConfigFromEnv();
    const identity = await identitySourceFromEnv();
    if (identity.mode === 'tokens' && identity.tokens.created) {
      // Printed once, on the run that generated them; afterwards they are in the token file.
      process.stdout.write(`Generated API tokens (stored in ${identity.tokens.file}):\n${describeTokens(identity.tokens.config)}\n`);
    }
    if (identity.mode === 'keystone') log.info({ keystone: identity.url }, 'validating Keystone tokens');
    // under Keystone: Cinder from SNAP_VOLUME_URL or the catalog, and trusts for the workers
    const keystone = identity.mode === 'keystone' ? { source: identity.source, service: keystoneServiceOptionsFromEnv() } : undefined;
    const volumeUrl = config.volumeUrl ?? (keystone?.service === undefined ? undefined : catalogVolumeRoot(keystone.source, keystone.service.catalog));
    const api = await startApi({
      host: config.host,
      port: config.port,
      store: config.store,
      imageUrl: config.imageUrl,
      temporalUiUrl: config.temporalUiUrl,
      metadataQuota: config.metadataQuota,
      createBackupPolicy: config.createBackupPolicy,
      backupSchedulePolicy: config.backupSchedulePolicy,
      backupCatchupWindowSeconds: config.backupCatchupWindowSeconds,
      auth: identity.source,
      ...(volumeUrl === undefined ? {} : { volume: { url: volumeUrl, callerToken: identity.mode === 'keystone' } }),
      ...(keystone?.service === undefined ? {} : { trusts: keystoneTrustDelegator(keystone.source, keystone.service.trustTtlSeconds) }),
      logger: log,
    });
    return { stop: () => api.close() };
  },
  log,
);
