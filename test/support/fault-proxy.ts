// A pass-through HTTP proxy in front of the image service for the host worker, switchable to
// answer 503 to image data uploads: "the image service answering 5xx" without touching its code.
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type ProxyMode = 'pass' | 'fail-uploads';

export interface FaultProxy {
  url: string;
  mode: ProxyMode;
  /** uploads answered 503 since start */
  rejectedUploads: number;
  /** request body bytes passed on to the image service since start: what it received */
  bodyBytes: number;
  close(): Promise<void>;
}

const UPLOAD = /^\/v2\/images\/[^/]+\/file$/;
/** the resumable upload's appends (src/images/README.md) */
const APPEND = /^\/v2\/images\/[^/]+\/resumable$/;
/** a named upload's chunks (protocol 2) */
const CHUNK = /^\/v2\/images\/[^/]+\/chunks\/[0-9a-f]{64}$/;

function isUpload(req: IncomingMessage): boolean {
  const url = req.url ?? '';
  return (req.method === 'PUT' && (UPLOAD.test(url) || CHUNK.test(url))) || (req.method === 'PATCH' && APPEND.test(url));
}

export async function startFaultProxy(targetPort: number): Promise<FaultProxy> {
  const state = { mode: 'pass' as ProxyMode, rejected: 0, bodyBytes: 0 };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (state.mode === 'fail-uploads' && isUpload(req)) {
      state.rejected++;
      req.resume();
      res.writeHead(503, { 'Content-Type': 'application/json', Connection: 'close' });
      res.end(JSON.stringify({ message: 'injected by the fault proxy: image service unavailable' }));
      return;
    }
    const upstream = request({ host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    // The image service down: the client must see a failed request, as it would without the proxy.
    upstream.on('error', () => res.destroy());
    req.on('error', () => upstream.destroy());
    req.on('data', (chunk: Buffer) => {
      state.bodyBytes += chunk.length;
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get mode() {
      return state.mode;
    },
    set mode(m: ProxyMode) {
      state.mode = m;
    },
    get rejectedUploads() {
      return state.rejected;
    },
    get bodyBytes() {
      return state.bodyBytes;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
