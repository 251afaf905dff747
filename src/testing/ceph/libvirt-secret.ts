// The libvirt secret of type ceph that holds a cephx key, as Nova defines one for rbd_secret_uuid:
// QEMU gets the key from libvirt, never from a file or a command line. Made with virsh (test and
// demo code only); the key goes through a 0600 file, not argv.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { checkCephUser } from '../../ceph';
import { runTool } from '../../process/tool-process';

export interface CephSecret {
  uuid: string;
  remove(): Promise<void>;
}

/** Defines a private, persistent ceph secret holding `key` (base64, as ceph-authtool prints it). */
export async function defineCephSecret(uri: string, user: string, key: string): Promise<CephSecret> {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(key)) throw new Error('a cephx key is base64');
  if (!/^[a-z][a-z0-9+]*:\/\/[^\s]*$/.test(uri)) throw new Error(`not a libvirt URI: ${JSON.stringify(uri)}`);
  const uuid = randomUUID();
  const dir = await mkdtemp(path.join(tmpdir(), 'snap-secret-'));
  try {
    const xml = path.join(dir, 'secret.xml');
    const value = path.join(dir, 'key');
    await writeFile(xml, `<secret ephemeral='no' private='yes'><uuid>${uuid}</uuid><usage type='ceph'><name>client.${checkCephUser(user)} secret ${uuid}</name></usage></secret>\n`);
    await writeFile(value, key, { mode: 0o600 });
    await runTool('virsh', ['-q', '-c', uri, 'secret-define', '--file', xml]);
    try {
      await runTool('virsh', ['-q', '-c', uri, 'secret-set-value', '--secret', uuid, '--file', value]);
    } catch (err) {
      await undefineSecret(uri, uuid);
      throw err;
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return { uuid, remove: () => undefineSecret(uri, uuid) };
}

async function undefineSecret(uri: string, uuid: string): Promise<void> {
  await runTool('virsh', ['-q', '-c', uri, 'secret-undefine', uuid]).catch(() => undefined);
}
