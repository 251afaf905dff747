// Compute API process: `tsx src/api/main.ts`. Configured by SNAP_API_* / SNAP_* / TEMPORAL_* env
// (see api-config.ts and auth-config.ts); prints the tokens when it generated them.
import { createAuthenticator, describeTokens, loadOrCreateTokens, tokenOptionsFromEnv } from '../auth';
import { createLogger, logLevelFromEnv } from '../observability';
import { apiConfigFromEnv } from './api-config';
import { startApi } from './api-server';

async function main(): Promise<void> {
  const log = createLogger({ name: 'compute-api', level: logLevelFromEnv() });
  const config = apiConfigFromEnv();
  const tokens = await loadOrCreateTokens(tokenOptionsFromEnv());
  if (tokens.created) {
    // Printed once, on the run that generated them; afterwards they are in the token file.
    process.stdout.write(`Generated API tokens (stored in ${tokens.file}):\n${describeTokens(tokens.config)}\n`);
  }
  const api = await startApi({
    host: config.host,
    port: config.port,
    store: config.store,
    imageUrl: config.imageUrl,
    temporalUiUrl: config.temporalUiUrl,
    metadataQuota: config.metadataQuota,
    auth: createAuthenticator(tokens.config),
    logger: log,
  });

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down: finishing in-flight requests');
    api.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`compute API failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
