// Assembles service + HTTP front into one start/stop unit, for server-main and for tests.
import type { AddressInfo } from 'node:net';
import type { Authenticator } from '../../auth';
import { listenHttpApp } from '../../http';
import { createImageHttpApp } from './image-http-app';
import { ImageService, type RecoveryReport } from './image-service';
import type { RepositoryWarning } from './image-record-repository';
import type { ImageQuotaLimits, ProjectQuotaOverrides } from './quotas';
import type { UploadLimits } from './upload-limits';
import type { VerifyJobSettings } from './verify-jobs';
import type { SharedStoreBackend } from '../store/store-backend';

export interface StartImageServerOptions {
  host?: string;
  /** 0 = any free port. */
  port: number;
  dataDir: string;
  maxImageBytes: number;
  /** Verify-after-commit (default true): see ImageServiceOptions. */
  verifyAfterCommit?: boolean;
  /** See ImageServiceOptions.deletedRetentionMs. */
  deletedRetentionMs?: number;
  /** Per-project limits; default unlimited. See ImageServiceOptions.quotas. */
  quotas?: ImageQuotaLimits;
  quotaOverrides?: ProjectQuotaOverrides;
  authenticate?: Authenticator;
  maxJsonBytes?: number;
  /** Connection idle, whole-request and keep-alive timeouts: see ImageHttpAppOptions. */
  idleTimeoutMs?: number;
  requestTimeoutMs?: number;
  keepAliveTimeoutMs?: number;
  /** Concurrent data requests and the body idle timeout: see ImageHttpAppOptions. */
  uploadLimits?: UploadLimits;
  /** The store's verify jobs: see ImageServiceOptions.verifyJobs. */
  verifyJobs?: Partial<VerifyJobSettings>;
  /** Chunks and indexes in a backend other services share, and how often it is swept: see ImageServiceOptions.sharedStore. */
  sharedStore?: SharedStoreBackend;
  sharedStoreSweepMs?: number;
  /** See ImageServiceOptions.sharedRecordsTtlMs. */
  sharedRecordsTtlMs?: number;
  warn?: RepositoryWarning;
  onRequestError?: (err: unknown) => void;
}

export interface RunningImageServer {
  /** e.g. http://127.0.0.1:9292 */
  url: string;
  address: AddressInfo;
  recovery: RecoveryReport;
  service: ImageService;
  close(): Promise<void>;
}

export async function startImageServer(options: StartImageServerOptions): Promise<RunningImageServer> {
  const service = await ImageService.open({
    dataDir: options.dataDir,
    maxImageBytes: options.maxImageBytes,
    verifyAfterCommit: options.verifyAfterCommit,
    deletedRetentionMs: options.deletedRetentionMs,
    quotas: options.quotas,
    quotaOverrides: options.quotaOverrides,
    verifyJobs: options.verifyJobs,
    sharedStore: options.sharedStore,
    sharedStoreSweepMs: options.sharedStoreSweepMs,
    sharedRecordsTtlMs: options.sharedRecordsTtlMs,
    warn: options.warn,
  });
  let url = '';
  const http = await createImageHttpApp({
    service,
    authenticate: options.authenticate,
    maxJsonBytes: options.maxJsonBytes,
    idleTimeoutMs: options.idleTimeoutMs,
    requestTimeoutMs: options.requestTimeoutMs,
    keepAliveTimeoutMs: options.keepAliveTimeoutMs,
    uploadLimits: options.uploadLimits,
    onError: options.onRequestError,
    baseUrl: () => url,
  });
  let address: AddressInfo;
  try {
    ({ address, url } = await listenHttpApp(http, options.port, options.host ?? '127.0.0.1'));
  } catch (err) {
    await service.close();
    throw err;
  }
  return {
    url,
    address,
    recovery: service.recovery,
    service,
    async close() {
      await http.close();
      await service.close();
    },
  };
}
