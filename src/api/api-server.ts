// startApi: opens the store, wires services, listens. Used by main.ts, by the `npm start`
// orchestrator and by tests (port 0, injected Temporal client and authenticator).
import { cinderForProject, type CinderClient, type VolumeAccess } from '../cinder';
import type { Client } from '@temporalio/client';
import { Counter } from 'prom-client';
import type { Logger } from 'pino';
import type { IdentitySource } from '../auth';
import { GlanceHttpClient } from '../images/client';
import { createLogger, createSnapshotMetrics, type SnapshotMetrics } from '../observability';
import { InstanceStore, type StoreConfigInput } from '../store';
import { BackupSchedules, DEFAULT_CATCHUP_WINDOW_SECONDS } from '../temporal/backup-schedules';
import { connectClient } from '../temporal/connect';
import { createApiApp } from './api-app';
import { listenHttpApp } from '../http';
import { DEFAULT_MAX_BODY_BYTES } from './http-io';
import type { ApiServices } from './request-context';
import { SnapshotRuns } from './snapshot-runs';
import { SnapshotStarter } from './snapshot-starter';
import type { CreateBackupPolicy } from './backup-policy';
import type { TrustDelegator } from './volume-trust';

export interface StartApiOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 8774; 0 = any free port. */
  port?: number;
  store: StoreConfigInput;
  /** Image service base URL, e.g. http://127.0.0.1:9292 */
  imageUrl: string;
  /** The token file's table, or Keystone. */
  auth: IdentitySource;
  /**
   * Cinder's v3 root (SNAP_VOLUME_URL), for the snapshot quota of volume-backed instances; with
   * Keystone the caller's token is sent, as Nova does, otherwise noauth's `user:project`.
   */
  volume?: { url: VolumeAccess['baseUrl']; callerToken: boolean };
  /** Under Keystone: the trusts that let the workers act for the caller on a volume-backed instance's volumes. */
  trusts?: TrustDelegator;
  /** A connected client; when absent one is made from TEMPORAL_* env and closed on close(). */
  temporal?: Client;
  /** Temporal Web UI base for run links. Default http://127.0.0.1:8233 */
  temporalUiUrl?: string;
  /** createImage metadata item quota (Nova's metadata_items). Default 128. */
  metadataQuota?: number;
  maxBodyBytes?: number;
  /** Who may call createBackup (os_compute_api:os-create-backup). Default Nova's: project_member_or_admin. */
  createBackupPolicy?: CreateBackupPolicy;
  /** Who may read and manage backup schedules (os_compute_api:os-backup-schedule). Default project_member_or_admin. */
  backupSchedulePolicy?: CreateBackupPolicy;
  /** The catch-up window of the schedules this API creates. Default DEFAULT_CATCHUP_WINDOW_SECONDS (1 hour). */
  backupCatchupWindowSeconds?: number;
  /** How long createImage waits for Temporal to accept the workflow before answering 503. Default 10 s. */
  workflowStartTimeoutMs?: number;
  logger?: Logger;
  metrics?: SnapshotMetrics;
}

export interface RunningApi {
  /** e.g. http://127.0.0.1:8774 */
  url: string;
  port: number;
  store: InstanceStore;
  metrics: SnapshotMetrics;
  /** Stops accepting requests, finishes in-flight ones, closes the store (and the Temporal client it made). */
  close(): Promise<void>;
}

function cinderForCaller(volume: { url: VolumeAccess['baseUrl']; callerToken: boolean }): (token: string, projectId: string) => CinderClient {
  return (token, projectId) => cinderForProject(volume.url, volume.callerToken ? token : undefined)(projectId);
}

export async function startApi(options: StartApiOptions): Promise<RunningApi> {
  const log = options.logger ?? createLogger({ name: 'compute-api' });
  const metrics = options.metrics ?? createSnapshotMetrics({ labels: { component: 'compute-api' } });
  const requests = new Counter({
    name: 'compute_api_requests_total',
    help: 'Compute API requests by route and status',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [metrics.registry],
  });
  const ownsTemporal = options.temporal === undefined;
  const temporal = options.temporal ?? (await connectClient());
  const store = await InstanceStore.open(options.store);
  const imageUrl = options.imageUrl.replace(/\/$/, '');
  const host = options.host ?? '127.0.0.1';

  const services: ApiServices = {
    store,
    starter: new SnapshotStarter({ store, temporal, metadataQuota: options.metadataQuota ?? 128, startTimeoutMs: options.workflowStartTimeoutMs, log }),
    runs: new SnapshotRuns({ client: temporal, uiBaseUrl: options.temporalUiUrl ?? 'http://127.0.0.1:8233' }),
    imagesFor: (token) => new GlanceHttpClient(imageUrl, token),
    ...(options.volume === undefined ? {} : { cinderFor: cinderForCaller(options.volume) }),
    ...(options.trusts === undefined ? {} : { trusts: options.trusts }),
    baseUrl: '',
    imageUrl,
    createBackupPolicy: options.createBackupPolicy ?? 'project_member_or_admin',
    schedules: new BackupSchedules(temporal, { catchupWindowSeconds: options.backupCatchupWindowSeconds ?? DEFAULT_CATCHUP_WINDOW_SECONDS }),
    backupSchedulePolicy: options.backupSchedulePolicy ?? 'project_member_or_admin',
    temporalUiUrl: (options.temporalUiUrl ?? 'http://127.0.0.1:8233').replace(/\/$/, ''),
    log,
  };
  let listening: { url: string; port: number };
  let app: Awaited<ReturnType<typeof createApiApp>> | undefined;
  try {
    app = await createApiApp({
      services,
      auth: options.auth,
      registry: metrics.registry,
      maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
      observe: (route, method, status) => requests.inc({ route, method, status: String(status) }),
    });
    const { address, url } = await listenHttpApp(app, options.port ?? 8774, host);
    listening = { url, port: address.port };
  } catch (err) {
    await Promise.allSettled([app?.close(), store.close(), ownsTemporal ? temporal.connection.close() : Promise.resolve()]);
    throw err;
  }
  const { url } = listening;
  const server = app;
  services.baseUrl = url;
  log.info({ url, image_url: imageUrl }, 'compute API listening');

  let closing: Promise<void> | undefined;
  return {
    url,
    port: listening.port,
    store,
    metrics,
    close() {
      closing ??= (async () => {
        await server.close();
        await store.close();
        if (ownsTemporal) await temporal.connection.close();
      })();
      return closing;
    },
  };
}
