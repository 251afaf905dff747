// Assembles service + HTTP front into one start/stop unit, for server-main and for tests.
import type { AddressInfo } from 'node:net';
import type { Authenticator } from '../auth';
import { ImageHttpServer } from './image-http-server';
import { ImageService, type RecoveryReport } from './image-service';
import type { RepositoryWarning } from './image-record-repository';

export interface StartImageServerOptions {
  host?: string;
  /** 0 = any free port. */
  port: number;
  dataDir: string;
  maxImageBytes: number;
  /** Verify-after-commit (default true): see ImageServiceOptions. */
  verifyAfterCommit?: boolean;
  authenticate?: Authenticator;
  maxJsonBytes?: number;
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
    warn: options.warn,
  });
  const http = new ImageHttpServer({
    service,
    authenticate: options.authenticate,
    maxJsonBytes: options.maxJsonBytes,
    onError: options.onRequestError,
  });
  const address = await http.listen(options.port, options.host ?? '127.0.0.1');
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    address,
    recovery: service.recovery,
    service,
    async close() {
      await http.close();
      await service.close();
    },
  };
}
