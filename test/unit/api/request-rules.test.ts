import { CreateImageActionSchema, OpsSnapshotsQuerySchema } from '../../../src/api/api-schemas';
import { faultBody } from '../../../src/api/api-errors';
import { negotiateVersion, versionHeaders } from '../../../src/api/microversion';
import { visibilityQuery } from '../../../src/api/snapshot-runs';
import { checkMetadata } from '../../../src/api/snapshot-starter';

describe('microversion negotiation', () => {
  it('defaults to 2.1, reads both headers, and knows "latest"', () => {
    expect(negotiateVersion({})).toEqual({ major: 2, minor: 1 });
    expect(negotiateVersion({ 'openstack-api-version': 'compute 2.45' })).toEqual({ major: 2, minor: 45 });
    expect(negotiateVersion({ 'openstack-api-version': 'image 2.5, compute 2.50' })).toEqual({ major: 2, minor: 50 });
    expect(negotiateVersion({ 'x-openstack-nova-api-version': '2.44' })).toEqual({ major: 2, minor: 44 });
    expect(negotiateVersion({ 'openstack-api-version': 'compute latest' })).toEqual({ major: 2, minor: 96 });
    expect(versionHeaders({ major: 2, minor: 45 })['OpenStack-API-Version']).toBe('compute 2.45');
  });

  it('400 for malformed, 406 for out-of-range versions', () => {
    expect(() => negotiateVersion({ 'openstack-api-version': 'compute 2.x' })).toThrow(expect.objectContaining({ status: 400 }));
    expect(() => negotiateVersion({ 'openstack-api-version': 'compute 2.97' })).toThrow(expect.objectContaining({ status: 406 }));
    expect(() => negotiateVersion({ 'x-openstack-nova-api-version': '2.0' })).toThrow(expect.objectContaining({ status: 406 }));
  });
});

describe('createImage body rules', () => {
  const ok = (body: unknown) => CreateImageActionSchema.safeParse(body).success;
  it('accepts Nova\'s shape and refuses everything else', () => {
    expect(ok({ createImage: { name: 'snap' } })).toBe(true);
    expect(ok({ createImage: { name: 'snap 1', metadata: { 'os:type': 'linux', 'a.b-c_d e': '' } } })).toBe(true);
    expect(ok({ createImage: { name: 'x'.repeat(255) } })).toBe(true);
    expect(ok({ createImage: { name: 'x'.repeat(256) } })).toBe(false);
    expect(ok({ createImage: { name: '' } })).toBe(false);
    expect(ok({ createImage: { name: 'trailing ' } })).toBe(false);
    expect(ok({ createImage: {} })).toBe(false);
    expect(ok({ createImage: { name: 's', metadata: { 'k/ey': 'v' } } })).toBe(false);
    expect(ok({ createImage: { name: 's', metadata: { k: 'v'.repeat(256) } } })).toBe(false);
    expect(ok({ createImage: { name: 's', metadata: { k: 1 } } })).toBe(false);
    expect(ok({ createImage: { name: 's' }, other: 1 })).toBe(false);
  });

  it('enforces the metadata quota (403) and reserved Glance keys (400)', () => {
    expect(() => checkMetadata({ a: '1', b: '2' }, 2)).not.toThrow();
    expect(() => checkMetadata({ a: '1', b: '2', c: '3' }, 2)).toThrow(expect.objectContaining({ status: 403, message: 'Image metadata limit exceeded' }));
    expect(() => checkMetadata({ visibility: 'public' }, 10)).toThrow(expect.objectContaining({ status: 400 }));
    expect(() => checkMetadata({ os_glance_x: '1' }, 10)).toThrow(expect.objectContaining({ status: 400 }));
  });

  it('renders Nova fault names per status', () => {
    expect(faultBody(409, 'm')).toEqual({ conflictingRequest: { code: 409, message: 'm' } });
    expect(faultBody(413, 'm')).toEqual({ overLimit: { code: 413, message: 'm' } });
    expect(faultBody(500, 'm')).toEqual({ computeFault: { code: 500, message: 'm' } });
  });
});

describe('ops visibility query', () => {
  it('only ever embeds validated values', () => {
    expect(visibilityQuery({ state: 'failed', host: 'node-1' })).toBe(
      "WorkflowType = 'snapshotInstance' AND (ExecutionStatus = 'Failed' OR ExecutionStatus = 'Terminated' OR ExecutionStatus = 'TimedOut' OR ExecutionStatus = 'Canceled') AND ComputeHost = 'node-1'",
    );
    expect(OpsSnapshotsQuerySchema.safeParse({ host: "x' OR '1'='1" }).success).toBe(false);
    expect(OpsSnapshotsQuerySchema.safeParse({ instance: "x' OR 1=1" }).success).toBe(false);
  });
});
