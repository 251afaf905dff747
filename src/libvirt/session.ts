// Turning a socket into a usable libvirt session: the auth exchange, REMOTE_PROC_CONNECT_OPEN and
// keepalive negotiation. Kept apart from the client so the client holds only the API calls.
import { LibvirtUsageError } from './errors';
import { ConnectOptionsSchema, type ConnectOptions } from './api-types';
import { AuthType, Procedure, REMOTE_AUTH_TYPE_LIST_MAX, REMOTE_RPC, VIR_CONNECT_RO, VIR_DRV_FEATURE_PROGRAM_KEEPALIVE, type RpcProgram } from './protocol';
import { RpcConnection, type CallOptions } from './rpc';
import { describeTarget, openTransport } from './transport';
import { writeOptString } from './types';
import { parseUri, resolveTarget } from './uri';
import type { XdrReader, XdrWriter } from './xdr';

/** One call whose reply must be consumed exactly: trailing bytes mean the layouts disagree. */
export async function invoke<T>(
  rpc: RpcConnection,
  proc: number,
  write: ((w: XdrWriter) => void) | undefined,
  read: (r: XdrReader) => T,
  opts?: CallOptions,
  program: RpcProgram = REMOTE_RPC,
): Promise<T> {
  const r = await rpc.call(proc, write, opts, program);
  const value = read(r);
  r.end();
  return value;
}

function nothing(): undefined {
  return undefined;
}

/** Opens, authenticates and connects; the returned connection is ready for API calls. */
export async function openSession(uri: string, options: ConnectOptions): Promise<RpcConnection> {
  const checked = ConnectOptionsSchema.safeParse(options);
  if (!checked.success) throw new LibvirtUsageError(`invalid connect options: ${checked.error.message}`);
  const opts = checked.data;
  const parsed = parseUri(uri);
  const target = resolveTarget(parsed, { socketPath: opts.socketPath, readonly: opts.readonly });
  const socket = await openTransport(target, opts.connectTimeoutMs);
  const rpc = new RpcConnection(socket, opts, describeTarget(target));
  try {
    await authenticate(rpc);
    const connectOpenArgs = (w: XdrWriter): void => {
      writeOptString(w, parsed.daemonUri);
      w.uint32(opts.readonly ? VIR_CONNECT_RO : 0);
    };
    await invoke(rpc, Procedure.ConnectOpen, connectOpenArgs, nothing);
    if (opts.keepaliveIntervalMs > 0) {
      const supported = await invoke(rpc, Procedure.ConnectSupportsFeature, (w) => w.int32(VIR_DRV_FEATURE_PROGRAM_KEEPALIVE), (r) => r.int32() !== 0);
      if (supported) rpc.startKeepalive();
    }
  } catch (e) {
    rpc.close('connect failed');
    throw e;
  }
  return rpc;
}

/**
 * The daemon refuses every call until the client has asked for the auth list; for root on a
 * polkit-protected unix socket, that request alone (plus AUTH_POLKIT) grants access.
 */
async function authenticate(rpc: RpcConnection): Promise<void> {
  const types = await invoke(rpc, Procedure.AuthList, undefined, (r) => r.array(REMOTE_AUTH_TYPE_LIST_MAX, 4, (x) => x.int32()));
  if (types.length === 0 || types.includes(AuthType.None)) return;
  if (types.includes(AuthType.Polkit)) {
    await invoke(rpc, Procedure.AuthPolkit, undefined, (r) => r.int32());
    return;
  }
  throw new LibvirtUsageError(`the daemon requires authentication this client does not implement (auth types ${types.join(', ')}; SASL is unsupported)`);
}
