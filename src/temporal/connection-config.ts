import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { EnvBooleanSchema, parseEnv } from '../config/env';

// Where workers and clients find Temporal: the local dev server by default, any self-hosted
// cluster or Temporal Cloud through these variables (documented in temporal/README.md).
export const TemporalEnvSchema = z
  .object({
    TEMPORAL_ADDRESS: z.string().regex(/^[A-Za-z0-9.\-[\]:]+:\d{1,5}$/, 'host:port').default('127.0.0.1:7233'),
    TEMPORAL_NAMESPACE: z.string().min(1).max(255).default('default'),
    TEMPORAL_TLS_CERT: z.string().min(1).optional(),
    TEMPORAL_TLS_KEY: z.string().min(1).optional(),
    TEMPORAL_TLS_CA: z.string().min(1).optional(),
    TEMPORAL_TLS_SERVER_NAME: z.string().min(1).optional(),
    /** unset: TLS when a certificate, CA or API key asks for it */
    TEMPORAL_TLS: EnvBooleanSchema.optional(),
    TEMPORAL_API_KEY: z.string().min(1).optional(),
  })
  .refine((env) => Boolean(env.TEMPORAL_TLS_CERT) === Boolean(env.TEMPORAL_TLS_KEY), {
    message: 'TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY go together (mTLS needs both)',
  });

export type TemporalEnv = z.infer<typeof TemporalEnvSchema>;

export interface TemporalConnectionSettings {
  address: string;
  namespace: string;
  tls?: {
    serverNameOverride?: string;
    serverRootCACertificate?: Buffer;
    clientCertPair?: { crt: Buffer; key: Buffer };
  };
  apiKey?: string;
}

export function loadTemporalSettings(env: NodeJS.ProcessEnv = process.env): TemporalConnectionSettings {
  const parsed = parseEnv(TemporalEnvSchema, env, 'Temporal connection');
  const wantsTls = parsed.TEMPORAL_TLS ?? Boolean(parsed.TEMPORAL_TLS_CERT || parsed.TEMPORAL_TLS_CA || parsed.TEMPORAL_API_KEY);
  const settings: TemporalConnectionSettings = { address: parsed.TEMPORAL_ADDRESS, namespace: parsed.TEMPORAL_NAMESPACE };
  if (parsed.TEMPORAL_API_KEY) settings.apiKey = parsed.TEMPORAL_API_KEY;
  if (wantsTls) {
    settings.tls = {
      serverNameOverride: parsed.TEMPORAL_TLS_SERVER_NAME,
      serverRootCACertificate: parsed.TEMPORAL_TLS_CA ? readFileSync(parsed.TEMPORAL_TLS_CA) : undefined,
      clientCertPair:
        parsed.TEMPORAL_TLS_CERT && parsed.TEMPORAL_TLS_KEY
          ? { crt: readFileSync(parsed.TEMPORAL_TLS_CERT), key: readFileSync(parsed.TEMPORAL_TLS_KEY) }
          : undefined,
    };
  }
  return settings;
}
