import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { loadTemporalSettings, type TemporalConnectionSettings } from './connection-config';

export async function connectClient(settings: TemporalConnectionSettings = loadTemporalSettings()): Promise<Client> {
  const connection = await Connection.connect({ address: settings.address, tls: settings.tls, apiKey: settings.apiKey });
  return new Client({ connection, namespace: settings.namespace });
}

export async function connectWorker(settings: TemporalConnectionSettings = loadTemporalSettings()): Promise<NativeConnection> {
  return NativeConnection.connect({ address: settings.address, tls: settings.tls, apiKey: settings.apiKey });
}
