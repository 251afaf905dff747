// Standalone image service process: `tsx src/images/server-main.ts`. Configured by SNAP_IMAGE_*
// environment variables; no authenticator yet (the token config plugs in via startImageServer).
import pino from 'pino';
import { imageServerConfigFromEnv } from './image-server-config';
import { startImageServer } from './image-server';

async function main(): Promise<void> {
  const log = pino({ name: 'image-service' });
  const config = imageServerConfigFromEnv(process.env);
  const server = await startImageServer({
    ...config,
    warn: (details, message) => log.warn(details, message),
    onRequestError: (err) => log.error({ err }, 'request failed'),
  });
  log.info({ url: server.url, dataDir: config.dataDir, recovery: server.recovery }, 'image service listening');

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down: finishing in-flight requests');
    server.close().then(
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
  process.stderr.write(`image service failed to start: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
