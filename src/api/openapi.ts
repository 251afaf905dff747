// OpenAPI 3 document generated from the zod schemas the handlers validate with (api-schemas.ts),
// so the published contract and the enforced one are the same objects.
import type { ZodTypeAny } from 'zod';
import { zodToJsonSchema } from 'zod-to-json-schema';
import {
  CreateImageActionSchema,
  CreateImageResponseSchema,
  FaultSchema,
  HostsResponseSchema,
  OpsSnapshotsQuerySchema,
  RetryResponseSchema,
  ServerResponseSchema,
  ServersDetailResponseSchema,
  ServersResponseSchema,
  SnapshotResponseSchema,
  SnapshotsResponseSchema,
} from './api-schemas';
import { formatVersion, MAX_VERSION } from './microversion';

// zodToJsonSchema's generic signature sends tsc into deep instantiation; a plain function type avoids it.
const toJsonSchema = zodToJsonSchema as unknown as (s: ZodTypeAny, options: { target: 'openApi3'; $refStrategy: 'none' }) => Record<string, unknown>;

function schema(s: ZodTypeAny): unknown {
  const { $schema: _ignored, ...rest } = toJsonSchema(s, { target: 'openApi3', $refStrategy: 'none' });
  return rest;
}

const json = (s: ZodTypeAny) => ({ 'application/json': { schema: schema(s) } });
const fault = (description: string) => ({ description, content: json(FaultSchema) });
const ok = (description: string, s: ZodTypeAny) => ({ description, content: json(s) });
const auth = [{ token: [] }];

const serverId = { name: 'server_id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } };
const workflowId = { name: 'workflow_id', in: 'path', required: true, schema: { type: 'string', example: 'snapshot-<uuid>' } };
const microversion = {
  name: 'OpenStack-API-Version',
  in: 'header',
  required: false,
  schema: { type: 'string', example: 'compute 2.45' },
  description: 'compute microversion; X-OpenStack-Nova-API-Version is accepted too',
};

function queryParameters(s: typeof OpsSnapshotsQuerySchema): unknown[] {
  return Object.entries(s.shape).map(([name, field]) => ({ name, in: 'query', required: false, schema: schema(field) }));
}

export function buildOpenApiDocument(serverUrl: string): unknown {
  const common401 = { 401: fault('missing or unknown X-Auth-Token') };
  return {
    openapi: '3.0.3',
    info: { title: 'Durable VM snapshots: compute API', version: formatVersion(MAX_VERSION) },
    servers: [{ url: serverUrl }],
    components: { securitySchemes: { token: { type: 'apiKey', in: 'header', name: 'X-Auth-Token' } } },
    security: auth,
    paths: {
      '/v2.1/servers': { get: { summary: 'List servers of the token\'s project (all_tenants=1 for admins)', responses: { 200: ok('servers', ServersResponseSchema), ...common401 } } },
      '/v2.1/servers/detail': { get: { summary: 'List servers with details', responses: { 200: ok('servers', ServersDetailResponseSchema), ...common401 } } },
      '/v2.1/servers/{server_id}': {
        get: { summary: 'Show a server', parameters: [serverId], responses: { 200: ok('server', ServerResponseSchema), ...common401, 404: fault('unknown server or another project\'s') } },
      },
      '/v2.1/servers/{server_id}/action': {
        post: {
          summary: 'createImage: snapshot a server',
          parameters: [serverId, microversion],
          requestBody: { required: true, content: json(CreateImageActionSchema) },
          responses: {
            202: { description: 'accepted; Location header points at the image. Body {"image_id"} from 2.45, empty before', content: json(CreateImageResponseSchema) },
            400: fault('invalid body'),
            ...common401,
            403: fault('image metadata quota exceeded'),
            404: fault('unknown server or another project\'s'),
            409: fault('task_state set or vm_state not active/stopped/paused/suspended'),
            413: fault('body too large'),
            415: fault('not application/json'),
            503: fault('image service or Temporal unavailable; nothing was changed'),
          },
        },
      },
      '/v2.1/servers/{server_id}/snapshot-progress': {
        get: { summary: 'Latest snapshot run of a server (project-scoped)', parameters: [serverId], responses: { 200: ok('snapshot', SnapshotResponseSchema), ...common401, 404: fault('no such server or never snapshotted') } },
      },
      '/ops/snapshots': {
        get: { summary: 'Snapshot runs from Temporal visibility (admin)', parameters: queryParameters(OpsSnapshotsQuerySchema), responses: { 200: ok('runs', SnapshotsResponseSchema), 400: fault('bad filter'), ...common401, 403: fault('admin only') } },
      },
      '/ops/snapshots/{workflow_id}': {
        get: { summary: 'One snapshot run: steps, progress, error (admin)', parameters: [workflowId], responses: { 200: ok('run', SnapshotResponseSchema), ...common401, 403: fault('admin only'), 404: fault('unknown workflow') } },
      },
      '/ops/snapshots/{workflow_id}/retry': {
        post: { summary: 'Retry a failed snapshot (admin)', parameters: [workflowId], responses: { 202: ok('new run', RetryResponseSchema), ...common401, 403: fault('admin only'), 404: fault('unknown workflow or instance'), 409: fault('last run did not fail, or instance busy') } },
      },
      '/ops/hosts': { get: { summary: 'Compute hosts known from the instance store (admin)', responses: { 200: ok('hosts', HostsResponseSchema), ...common401, 403: fault('admin only') } } },
      '/metrics': { get: { summary: 'Prometheus metrics', security: [], responses: { 200: { description: 'text exposition format' } } } },
    },
  };
}
