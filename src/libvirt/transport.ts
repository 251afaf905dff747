// Opens the byte stream to the daemon. Only establishment lives here; liveness of an open
// connection is the RPC layer's job (keepalive), because a silent peer looks healthy to a socket.
import type net from 'node:net';
import { connectStream, describeStreamTarget, type StreamTarget } from '../net/stream-socket';
import { LibvirtConnectionError } from './errors';
import { errorMessage } from '../contract';

export type TransportTarget = StreamTarget;
export const describeTarget = describeStreamTarget;

export function openTransport(target: TransportTarget, timeoutMs: number): Promise<net.Socket> {
  return connectStream(target, timeoutMs).catch((err: unknown) => {
    throw new LibvirtConnectionError(errorMessage(err), { cause: err });
  });
}
