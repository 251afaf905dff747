// Connect options, validated before a socket is opened. The defaults fit a local export
// (libvirt's pull-mode backup socket, qemu-nbd): the spec's 32 MiB request size, a handful of
// requests in flight, and timeouts that turn a wedged server into an error rather than a hang.
import { z } from 'zod';
import { BASE_ALLOCATION, NBD_DEFAULT_MAX_PAYLOAD, NBD_MAX_BLOCK_STATUS_DESCRIPTORS, NBD_MAX_STRING } from './protocol';

const MiB = 1024 * 1024;

const nbdString = (what: string) => z.string().refine((s) => Buffer.byteLength(s, 'utf8') <= NBD_MAX_STRING && !s.includes('\0'), `${what} must be at most ${NBD_MAX_STRING} bytes of UTF-8 without NUL`);

const metaContextName = nbdString('a metadata context name').refine((s) => /^[^:\s]+:/.test(s), 'a metadata context name is a namespace, a colon and a leaf name');

export const NbdConnectOptionsSchema = z
  .object({
    /** unix socket of the export (libvirt backup, qemu-nbd --socket) */
    socketPath: z.string().min(1).optional(),
    host: z.string().min(1).optional(),
    port: z.number().int().min(1).max(65535).optional(),
    /** '' is the server's default export */
    exportName: nbdString('an export name').default(''),
    /** contexts for NBD_OPT_SET_META_CONTEXT; each must be granted. [] asks for none. */
    metaContexts: z.array(metaContextName).max(16).default([BASE_ALLOCATION]),
    /** covers the connect and the whole handshake */
    connectTimeoutMs: z.number().int().positive().default(10_000),
    /** longest silence while requests are outstanding; 0 disables */
    replyTimeoutMs: z.number().int().nonnegative().default(60_000),
    /** how long close() waits for outstanding requests, then for the server to hang up */
    closeTimeoutMs: z.number().int().positive().default(5_000),
    maxInFlight: z.number().int().min(1).max(1024).default(16),
    maxInFlightBytes: z.number().int().min(1).default(128 * MiB),
    /** the largest single request; a read beyond it (or the server's maximum) is split */
    maxRequestBytes: z.number().int().min(512).max(256 * MiB).default(NBD_DEFAULT_MAX_PAYLOAD),
    /** the largest buffer one read() allocates */
    maxReadBytes: z.number().int().min(1).max(2 * 1024 * MiB).default(256 * MiB),
    /** descriptors accepted in one block-status chunk; more is a protocol error */
    maxBlockStatusDescriptors: z.number().int().min(1).max(NBD_MAX_BLOCK_STATUS_DESCRIPTORS).default(NBD_MAX_BLOCK_STATUS_DESCRIPTORS),
  })
  .strict()
  .refine((o) => (o.socketPath !== undefined) !== (o.host !== undefined || o.port !== undefined), {
    message: 'give either socketPath or host and port',
  })
  .refine((o) => o.socketPath !== undefined || (o.host !== undefined && o.port !== undefined), { message: 'a TCP target needs both host and port' });

export type NbdConnectOptions = z.input<typeof NbdConnectOptionsSchema>;
export type ResolvedConnectOptions = z.output<typeof NbdConnectOptionsSchema>;
