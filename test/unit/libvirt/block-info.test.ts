// virDomainGetBlockInfo on the wire, against the scripted daemon: where the snapshot path gets a
// disk's size from (libvirt's reading of the disk in its recorded format, not a header's claim).
import { Libvirt, LibvirtProtocolError, REMOTE_PROGRAM, type Domain } from '../../../src/libvirt';
import { readDomain, readString } from '../../../src/libvirt/types';
import { XdrReader } from '../../../src/libvirt/xdr';
import { startFakeDaemon, type FakeDaemon } from './fake-daemon';

const DOM: Domain = { name: 'guest-1', uuid: '11111111-2222-3333-4444-555555555555', id: 3 };
let daemon: FakeDaemon | null = null;

afterEach(async () => {
  await daemon?.close();
  daemon = null;
});

async function answering(allocation: bigint, capacity: bigint, physical: bigint): Promise<{ client: Libvirt; payloads: { procedure: number; program: number; payload: Buffer }[] }> {
  const payloads: { procedure: number; program: number; payload: Buffer }[] = [];
  daemon = await startFakeDaemon((conn, p) => {
    payloads.push({ procedure: p.header.procedure, program: p.header.program, payload: p.payload });
    conn.reply(p.header, (w) => {
      w.uhyper(allocation);
      w.uhyper(capacity);
      w.uhyper(physical);
    });
  });
  const client = await Libvirt.connect('qemu:///system', { socketPath: daemon.socketPath, keepaliveIntervalMs: 0, callTimeoutMs: 5_000 });
  return { client, payloads };
}

describe('virDomainGetBlockInfo', () => {
  it('sends REMOTE_PROC_DOMAIN_GET_BLOCK_INFO (194) with dom, disk and flags and decodes allocation, capacity, physical in that order', async () => {
    const { client, payloads } = await answering(200_704n, 16_777_216n, 196_616n);
    expect(await client.domainGetBlockInfo(DOM, 'vda')).toEqual({ allocation: 200_704, capacity: 16_777_216, physical: 196_616 });
    expect(payloads.map((p) => [p.program, p.procedure])).toEqual([[REMOTE_PROGRAM, 194]]);
    const r = new XdrReader(payloads[0]!.payload);
    expect({ dom: readDomain(r), disk: readString(r), flags: r.uint32() }).toEqual({ dom: DOM, disk: 'vda', flags: 0 });
    r.end();
    await client.close();
  });

  it('refuses a size past 2^53 instead of rounding it', async () => {
    const { client } = await answering(0n, 2n ** 60n, 0n);
    await expect(client.domainGetBlockInfo(DOM, 'vda')).rejects.toBeInstanceOf(LibvirtProtocolError);
    await client.close();
  });
});
