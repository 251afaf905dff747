// The OpenAPI 3 document: drawn by @fastify/swagger from the routes' own zod schemas (the ones
// Fastify validates with), so the published contract and the enforced one are the same objects.
import type { FastifyDynamicSwaggerOptions } from '@fastify/swagger';
import { jsonSchemaTransform } from 'fastify-type-provider-zod';
import { FaultSchema } from './api-schemas';
import { formatVersion, MAX_VERSION } from './microversion';

/** A Nova fault answer, described for the document. */
export const faultResponse = (description: string) => FaultSchema.describe(description);
export const UNAUTHORIZED_RESPONSE = { 401: faultResponse('missing or unknown X-Auth-Token') };

export const OPENAPI_PATH = '/openapi.json';

export function swaggerOptions(): FastifyDynamicSwaggerOptions {
  return {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Durable VM snapshots: compute API',
        version: formatVersion(MAX_VERSION),
        description:
          'Compute routes negotiate a microversion with `OpenStack-API-Version: compute X.Y` (or `X-OpenStack-Nova-API-Version`); absent means 2.1.',
      },
      components: { securitySchemes: { token: { type: 'apiKey', in: 'header', name: 'X-Auth-Token' } } },
      security: [{ token: [] }],
    },
    transform: jsonSchemaTransform,
  };
}
