// Opens the byte stream to the NBD server: a unix socket (libvirt's pull-mode backup export,
// `qemu-nbd --socket`) or TCP. Only establishment lives here; the handshake and transmission layers
// own the stream once it is open.
import type net from 'node:net';
import { connectStream, describeStreamTarget, StreamConnectFailed, type StreamTarget } from '../net/stream-socket';
import { NbdConnectionError, NbdTimeoutError } from './errors';
import { errorMessage } from '../contract';

export type NbdTarget = StreamTarget;
export const describeTarget = describeStreamTarget;

export function openTransport(target: NbdTarget, timeoutMs: number): Promise<net.Socket> {
  return connectStream(target, timeoutMs).catch((err: unknown) => {
    if (err instanceof StreamConnectFailed && err.timedOut) throw new NbdTimeoutError(err.message, timeoutMs);
    throw new NbdConnectionError(errorMessage(err), { cause: err });
  });
}
