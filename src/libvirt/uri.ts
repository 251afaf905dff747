// Connection URI → where to connect and what name to hand the daemon, following the libvirt
// remote driver's rules (src/remote/remote_sockets.c): `?socket=` wins; /system uses the
// privileged run dir (a modular virtqemud socket if present, else libvirtd's); /session uses
// the per-user run dir. Only local-unix and plain tcp transports are supported.
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LibvirtUsageError } from './errors';
import type { TransportTarget } from './transport';

export const LIBVIRTD_TCP_PORT = 16509;
export const SYSTEM_RUN_DIR = '/var/run/libvirt';

export interface ParsedUri {
  driver: string;
  transport: 'unix' | 'tcp';
  host: string;
  port: number | null;
  /** The URI the daemon is asked to open: transport, host and client-only parameters stripped. */
  daemonUri: string;
  path: string;
  socketParam: string | null;
}

const URI_RE = /^([a-z][a-z0-9]*)(?:\+([a-z]+))?:\/\/([^/?#]*)(\/[^?#]*)?(?:\?([^#]*))?$/i;
const SUPPORTED_DRIVERS = new Set(['qemu', 'test']);
/** Parameters the client consumes; libvirt strips these before sending the name to the daemon. */
const CLIENT_PARAMS = new Set(['socket', 'mode', 'no_verify', 'no_tty', 'pkipath', 'name', 'command', 'keyfile', 'netcat', 'proxy']);

export function parseUri(uri: string): ParsedUri {
  const m = URI_RE.exec(uri);
  if (!m) throw new LibvirtUsageError(`malformed libvirt URI: ${JSON.stringify(uri)}`);
  const driver = (m[1] ?? '').toLowerCase();
  const transportRaw = (m[2] ?? '').toLowerCase();
  const authority = m[3] ?? '';
  const uriPath = m[4] ?? '';
  const query = new URLSearchParams(m[5] ?? '');
  if (!SUPPORTED_DRIVERS.has(driver)) throw new LibvirtUsageError(`unsupported libvirt driver ${JSON.stringify(driver)} (supported: qemu, test)`);
  let transport: 'unix' | 'tcp';
  if (transportRaw === '' || transportRaw === 'unix') transport = 'unix';
  else if (transportRaw === 'tcp') transport = 'tcp';
  else throw new LibvirtUsageError(`unsupported transport ${JSON.stringify(transportRaw)} (supported: unix, tcp)`);
  const hostPort = authority.includes('@') ? authority.slice(authority.lastIndexOf('@') + 1) : authority;
  const pm = /^(\[[^\]]+\]|[^:]*)(?::(\d+))?$/.exec(hostPort);
  if (!pm) throw new LibvirtUsageError(`malformed host in libvirt URI: ${JSON.stringify(authority)}`);
  const host = (pm[1] ?? '').replace(/^\[|\]$/g, '');
  const port = pm[2] ? Number(pm[2]) : null;
  if (port !== null && (port < 1 || port > 65535)) throw new LibvirtUsageError(`port out of range in ${uri}`);
  if (transport === 'tcp' && host === '') throw new LibvirtUsageError(`tcp transport needs a host: ${uri}`);
  const kept = new URLSearchParams();
  for (const [k, v] of query) if (!CLIENT_PARAMS.has(k)) kept.append(k, v);
  const rest = kept.toString();
  const daemonUri = `${driver}://${uriPath}${rest ? `?${rest}` : ''}`;
  return { driver, transport, host, port, daemonUri, path: uriPath, socketParam: query.get('socket') };
}

export interface ResolveEnv {
  uid: number;
  home: string;
  xdgRuntimeDir: string | undefined;
  exists: (p: string) => boolean;
}

export function defaultResolveEnv(): ResolveEnv {
  return {
    uid: typeof process.getuid === 'function' ? process.getuid() : -1,
    home: os.homedir(),
    xdgRuntimeDir: process.env.XDG_RUNTIME_DIR,
    exists: existsSync,
  };
}

/** Where the daemon for `parsed` listens, as libvirt's client would work it out. */
export function resolveTarget(parsed: ParsedUri, options: { socketPath?: string; readonly?: boolean } = {}, env: ResolveEnv = defaultResolveEnv()): TransportTarget {
  if (parsed.transport === 'tcp') return { kind: 'tcp', host: parsed.host, port: parsed.port ?? LIBVIRTD_TCP_PORT };
  if (parsed.host !== '') throw new LibvirtUsageError(`a unix-socket URI cannot name a host (${parsed.host}); use qemu+tcp://`);
  const explicit = options.socketPath ?? parsed.socketParam;
  if (explicit) {
    if (!path.isAbsolute(explicit)) throw new LibvirtUsageError(`socket path must be absolute: ${explicit}`);
    return { kind: 'unix', path: explicit };
  }
  const session = parsed.path === '/session' || (parsed.path !== '/system' && env.uid !== 0);
  const suffix = options.readonly ? '-sock-ro' : '-sock';
  let dir: string;
  if (!session) dir = SYSTEM_RUN_DIR;
  else if (env.xdgRuntimeDir) dir = path.join(env.xdgRuntimeDir, 'libvirt');
  else dir = path.join(env.home, '.cache', 'libvirt');
  const modular = path.join(dir, `virt${parsed.driver}d${session ? '-sock' : suffix}`);
  if (parsed.driver === 'qemu' && env.exists(modular)) return { kind: 'unix', path: modular };
  return { kind: 'unix', path: path.join(dir, `libvirt${session ? '-sock' : suffix}`) };
}
