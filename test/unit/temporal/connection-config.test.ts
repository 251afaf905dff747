import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTemporalSettings } from '../../../src/temporal/connection-config';
import { devServerArgs } from '../../../src/temporal/dev-server';

describe('loadTemporalSettings', () => {
  it('defaults to the local dev server without TLS', () => {
    expect(loadTemporalSettings({})).toEqual({ address: '127.0.0.1:7233', namespace: 'default' });
  });

  it('builds mTLS from certificate files and turns TLS on for an API key', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tls-'));
    try {
      await writeFile(join(dir, 'c.pem'), 'CERT');
      await writeFile(join(dir, 'k.pem'), 'KEY');
      const mtls = loadTemporalSettings({ TEMPORAL_ADDRESS: 'ns.acct.tmprl.cloud:7233', TEMPORAL_NAMESPACE: 'ns.acct', TEMPORAL_TLS_CERT: join(dir, 'c.pem'), TEMPORAL_TLS_KEY: join(dir, 'k.pem') });
      expect(mtls.tls?.clientCertPair?.crt.toString()).toBe('CERT');
      expect(mtls.tls?.clientCertPair?.key.toString()).toBe('KEY');
      // a private cluster's frontend: its CA and the name its certificate carries
      await writeFile(join(dir, 'ca.pem'), 'CA');
      const privateCa = loadTemporalSettings({ TEMPORAL_ADDRESS: '10.0.0.5:7233', TEMPORAL_TLS_CA: join(dir, 'ca.pem'), TEMPORAL_TLS_SERVER_NAME: 'temporal-frontend.example', TEMPORAL_TLS_CERT: join(dir, 'c.pem'), TEMPORAL_TLS_KEY: join(dir, 'k.pem') });
      expect(privateCa.tls?.serverRootCACertificate?.toString()).toBe('CA');
      expect(privateCa.tls?.serverNameOverride).toBe('temporal-frontend.example');
      expect(privateCa.tls?.clientCertPair?.crt.toString()).toBe('CERT');
      const keyed = loadTemporalSettings({ TEMPORAL_ADDRESS: 'x.tmprl.cloud:7233', TEMPORAL_API_KEY: 'secret' });
      expect(keyed.apiKey).toBe('secret');
      expect(keyed.tls).toBeDefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses half an mTLS pair and an address without a port', () => {
    expect(() => loadTemporalSettings({ TEMPORAL_TLS_CERT: '/x.pem' })).toThrow(/go together/);
    expect(() => loadTemporalSettings({ TEMPORAL_ADDRESS: 'localhost' })).toThrow();
  });
});

describe('devServerArgs', () => {
  it('registers the four Keyword search attributes, persists to a file and binds loopback', () => {
    const args = devServerArgs({ port: 7233, uiPort: 8233, dbFile: '/d/t.db' });
    expect(args.join(' ')).toContain('--ip 127.0.0.1 --port 7233 --db-filename /d/t.db');
    expect(args).toEqual(expect.arrayContaining(['--ui-port', '8233']));
    for (const key of ['InstanceUuid', 'ComputeHost', 'ImageId', 'SnapshotStep']) expect(args).toContain(`${key}=Keyword`);
    expect(devServerArgs({ port: 1, dbFile: '/d' })).toContain('--headless');
  });
});
