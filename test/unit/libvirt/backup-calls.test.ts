// The backup, checkpoint and job procedures on the wire, against the scripted daemon: what each
// call sends, how each reply is decoded, and replies that must be refused before allocation.
import type { Header } from '../../../src/libvirt/frame';
import {
  DomainJobOperation,
  DomainJobType,
  Libvirt,
  LibvirtError,
  LibvirtProtocolError,
  LibvirtUsageError,
  REMOTE_PROGRAM,
  TypedParamType,
  VIR_DOMAIN_BACKUP_BEGIN_REUSE_EXTERNAL,
  VIR_DOMAIN_CHECKPOINT_CREATE_QUIESCE,
  VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE,
  VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE_VALIDATE,
  VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN,
  VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN_ONLY,
  VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY,
  VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL,
  VIR_DOMAIN_CHECKPOINT_XML_NO_DOMAIN,
  VIR_DOMAIN_JOB_STATS_COMPLETED,
  VIR_ERR_NO_DOMAIN_CHECKPOINT,
  VIR_ERR_OPERATION_INVALID,
  isBackupJobRunning,
  type Domain,
  type DomainCheckpoint,
  type TypedParam,
} from '../../../src/libvirt';
import { readCheckpoint, writeCheckpoint } from '../../../src/libvirt/checkpoints';
import { readDomain, readOptString, readString, writeRemoteError, writeString, writeTypedParam } from '../../../src/libvirt/types';
import { XdrReader, type XdrWriter } from '../../../src/libvirt/xdr';
import { startFakeDaemon, type FakeDaemon, type PeerConn } from './fake-daemon';

const DOM: Domain = { name: 'guest-1', uuid: '11111111-2222-3333-4444-555555555555', id: 3 };
const CP1: DomainCheckpoint = { name: 'cp1', domain: DOM };
const CP2: DomainCheckpoint = { name: 'cp2', domain: DOM };

interface Seen {
  header: Header;
  payload: Buffer;
}

let daemon: FakeDaemon | null = null;

/** Replies to every call with `reply(procedure)`; records what was sent. */
async function connectTo(reply: (conn: PeerConn, call: Header, payload: Buffer) => void): Promise<{ client: Libvirt; seen: Seen[] }> {
  const seen: Seen[] = [];
  daemon = await startFakeDaemon((conn, p) => {
    seen.push({ header: p.header, payload: p.payload });
    reply(conn, p.header, p.payload);
  });
  const client = await Libvirt.connect('qemu:///system', { socketPath: daemon.socketPath, keepaliveIntervalMs: 0, callTimeoutMs: 5_000 });
  return { client, seen };
}

afterEach(async () => {
  await daemon?.close();
  daemon = null;
});

function replyError(conn: PeerConn, call: Header, code: number, message: string): void {
  conn.replyError(call, (w) => writeRemoteError(w, { code, domain: 10, message, level: 2, str1: null, str2: null, str3: null, int1: 0, int2: 0 }));
}

function writeCheckpointList(w: XdrWriter, list: readonly DomainCheckpoint[], count = list.length): void {
  w.array(list, 16384, writeCheckpoint);
  w.int32(count);
}

/** Reads the argument struct with `read` and insists it was consumed exactly. */
function args<T>(payload: Buffer, read: (r: XdrReader) => T): T {
  const r = new XdrReader(payload);
  const value = read(r);
  r.end();
  return value;
}

describe('virDomainBackupBegin / virDomainBackupGetXMLDesc', () => {
  it('sends REMOTE_PROC_DOMAIN_BACKUP_BEGIN (421) with dom, backup XML, optional checkpoint XML and flags', async () => {
    const { client, seen } = await connectTo((conn, call) => conn.reply(call));
    await client.backup.begin(DOM, '<domainbackup mode="pull"/>', '<domaincheckpoint/>', VIR_DOMAIN_BACKUP_BEGIN_REUSE_EXTERNAL);
    await client.backup.begin(DOM, '<domainbackup/>');
    const decode = (p: Buffer): unknown => args(p, (r) => ({ dom: readDomain(r), backup: readString(r), checkpoint: readOptString(r), flags: r.uint32() }));
    expect(seen.map((s) => [s.header.program, s.header.procedure])).toEqual([
      [REMOTE_PROGRAM, 421],
      [REMOTE_PROGRAM, 421],
    ]);
    expect(decode(seen[0]!.payload)).toEqual({ dom: DOM, backup: '<domainbackup mode="pull"/>', checkpoint: '<domaincheckpoint/>', flags: 1 });
    expect(decode(seen[1]!.payload)).toEqual({ dom: DOM, backup: '<domainbackup/>', checkpoint: null, flags: 0 });
    await client.close();
  });

  it('reads the job XML from REMOTE_PROC_DOMAIN_BACKUP_GET_XML_DESC (422)', async () => {
    const { client, seen } = await connectTo((conn, call) => conn.reply(call, (w) => writeString(w, '<domainbackup mode="pull"/>')));
    expect(await client.backup.getXMLDesc(DOM)).toBe('<domainbackup mode="pull"/>');
    expect(seen[0]?.header.procedure).toBe(422);
    expect(args(seen[0]!.payload, (r) => ({ dom: readDomain(r), flags: r.uint32() }))).toEqual({ dom: DOM, flags: 0 });
    await client.close();
  });

  it('refuses a reply with trailing bytes: the layouts must match exactly', async () => {
    const { client } = await connectTo((conn, call) => conn.reply(call, (w) => w.int32(0)));
    await expect(client.backup.begin(DOM, '<domainbackup/>')).rejects.toBeInstanceOf(LibvirtProtocolError);
    await client.close();
  });
});

describe('domain jobs', () => {
  const backupStats: TypedParam[] = [
    { field: 'operation', type: TypedParamType.Int, value: DomainJobOperation.Backup },
    { field: 'time_elapsed', type: TypedParamType.ULLong, value: 191n },
    { field: 'disk_temp_used', type: TypedParamType.ULLong, value: 131072n },
    { field: 'disk_temp_total', type: TypedParamType.ULLong, value: 67108864n },
    { field: 'some_future_stat', type: TypedParamType.Double, value: 0.5 },
  ];

  it('decodes REMOTE_PROC_DOMAIN_GET_JOB_STATS (298): type, operation and the backup counters', async () => {
    const { client, seen } = await connectTo((conn, call) =>
      conn.reply(call, (w) => {
        w.int32(DomainJobType.Unbounded);
        w.array(backupStats, 64, writeTypedParam);
      }),
    );
    const stats = await client.jobs.getStats(DOM, VIR_DOMAIN_JOB_STATS_COMPLETED);
    expect(seen[0]?.header.procedure).toBe(298);
    expect(args(seen[0]!.payload, (r) => ({ dom: readDomain(r), flags: r.uint32() }))).toEqual({ dom: DOM, flags: 1 });
    expect(stats).toMatchObject({
      type: DomainJobType.Unbounded,
      operation: DomainJobOperation.Backup,
      timeElapsedMs: 191,
      diskTempUsed: 131072,
      diskTempTotal: 67108864,
      dataTotal: null,
      success: null,
      errorMessage: null,
    });
    expect(stats.params).toHaveLength(5);
    expect(isBackupJobRunning(stats)).toBe(true);
    expect(isBackupJobRunning({ type: DomainJobType.Completed, operation: DomainJobOperation.Backup })).toBe(false);
    expect(isBackupJobRunning({ type: DomainJobType.Unbounded, operation: DomainJobOperation.Save })).toBe(false);
    await client.close();
  });

  it('reports no job as type None with nothing decoded', async () => {
    const { client } = await connectTo((conn, call) => conn.reply(call, (w) => w.int32(DomainJobType.None).uint32(0)));
    expect(await client.jobs.getStats(DOM)).toMatchObject({ type: DomainJobType.None, operation: null, params: [] });
    await client.close();
  });

  it('refuses more stats than REMOTE_DOMAIN_JOB_STATS_MAX, and counters beyond 2^53, without dropping the connection', async () => {
    let n = 0;
    const { client } = await connectTo((conn, call) => {
      n++;
      if (n === 1) conn.reply(call, (w) => w.int32(2).uint32(65));
      else if (n === 2) conn.reply(call, (w) => w.int32(2).array([{ field: 'data_total', type: TypedParamType.ULLong, value: 2n ** 60n }], 64, writeTypedParam));
      else conn.reply(call, (w) => w.int32(2).array([{ field: 'operation', type: TypedParamType.String, value: 'backup' }], 64, writeTypedParam));
    });
    await expect(client.jobs.getStats(DOM)).rejects.toThrow(/array length 65 exceeds limit 64/);
    await expect(client.jobs.getStats(DOM)).rejects.toThrow(/data_total = 1152921504606846976 exceeds the safe integer range/);
    await expect(client.jobs.getStats(DOM)).rejects.toThrow(/operation has non-numeric type 7/);
    expect(client.closed).toBe(false);
    await client.close();
  });

  it('decodes REMOTE_PROC_DOMAIN_GET_JOB_INFO (163): eleven counters after the type', async () => {
    const { client, seen } = await connectTo((conn, call) =>
      conn.reply(call, (w) => {
        w.int32(DomainJobType.Unbounded);
        for (let i = 1n; i <= 11n; i++) w.uhyper(i * 10n);
      }),
    );
    const info = await client.jobs.getInfo(DOM);
    expect(seen[0]?.header.procedure).toBe(163);
    expect(args(seen[0]!.payload, readDomain)).toEqual(DOM);
    expect(info).toEqual({
      type: DomainJobType.Unbounded,
      timeElapsedMs: 10,
      timeRemainingMs: 20,
      dataTotal: 30,
      dataProcessed: 40,
      dataRemaining: 50,
      memTotal: 60,
      memProcessed: 70,
      memRemaining: 80,
      fileTotal: 90,
      fileProcessed: 100,
      fileRemaining: 110,
    });
    await client.close();
  });

  it('aborts with REMOTE_PROC_DOMAIN_ABORT_JOB (164), or _ABORT_JOB_FLAGS (442) when flags are given; "no job" is a typed error', async () => {
    let n = 0;
    const { client, seen } = await connectTo((conn, call) => {
      n++;
      if (n === 3) replyError(conn, call, VIR_ERR_OPERATION_INVALID, 'Requested operation is not valid: no job is active on the domain');
      else conn.reply(call);
    });
    await client.jobs.abort(DOM);
    await client.jobs.abortFlags(DOM, 1);
    const err = await client.jobs.abort(DOM).catch((e: unknown) => e);
    expect(seen.map((s) => s.header.procedure)).toEqual([164, 442, 164]);
    expect(args(seen[0]!.payload, readDomain)).toEqual(DOM);
    expect(args(seen[1]!.payload, (r) => ({ dom: readDomain(r), flags: r.uint32() }))).toEqual({ dom: DOM, flags: 1 });
    expect(err).toBeInstanceOf(LibvirtError);
    expect(err).toMatchObject({ code: VIR_ERR_OPERATION_INVALID, procedure: 'DomainAbortJob' });
    await client.close();
  });
});

describe('domain checkpoints', () => {
  it('creates with REMOTE_PROC_DOMAIN_CHECKPOINT_CREATE_XML (411) and returns the remote_nonnull_domain_checkpoint', async () => {
    const { client, seen } = await connectTo((conn, call) => conn.reply(call, (w) => writeCheckpoint(w, CP1)));
    const cp = await client.checkpoints.createXML(DOM, '<domaincheckpoint/>', VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE | VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE_VALIDATE);
    expect(cp).toEqual(CP1);
    expect(seen[0]?.header.procedure).toBe(411);
    expect(args(seen[0]!.payload, (r) => ({ dom: readDomain(r), xml: readString(r), flags: r.uint32() }))).toEqual({ dom: DOM, xml: '<domaincheckpoint/>', flags: 5 });
    await client.close();
  });

  it('lists with REMOTE_PROC_DOMAIN_LIST_ALL_CHECKPOINTS (413) and _LIST_ALL_CHILDREN (414), asking for the results', async () => {
    const { client, seen } = await connectTo((conn, call) => conn.reply(call, (w) => writeCheckpointList(w, call.procedure === 413 ? [CP1, CP2] : [CP2])));
    expect(await client.checkpoints.listAll(DOM, VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL)).toEqual([CP1, CP2]);
    expect(await client.checkpoints.listAllChildren(CP1)).toEqual([CP2]);
    expect(seen.map((s) => s.header.procedure)).toEqual([413, 414]);
    expect(args(seen[0]!.payload, (r) => ({ dom: readDomain(r), needResults: r.int32(), flags: r.uint32() }))).toEqual({ dom: DOM, needResults: 1, flags: 2 });
    expect(args(seen[1]!.payload, (r) => ({ cp: readCheckpoint(r), needResults: r.int32(), flags: r.uint32() }))).toEqual({ cp: CP1, needResults: 1, flags: 0 });
    await client.close();
  });

  it('refuses a list longer than REMOTE_DOMAIN_CHECKPOINT_LIST_MAX or than the bytes sent, and one whose count disagrees', async () => {
    let n = 0;
    const { client } = await connectTo((conn, call) => {
      n++;
      if (n === 1) conn.reply(call, (w) => w.uint32(16385));
      else if (n === 2) conn.reply(call, (w) => w.uint32(1000).int32(1000));
      else conn.reply(call, (w) => writeCheckpointList(w, [CP1], 2));
    });
    await expect(client.checkpoints.listAll(DOM)).rejects.toThrow(/array length 16385 exceeds limit 16384/);
    await expect(client.checkpoints.listAll(DOM)).rejects.toThrow(/array length 1000 cannot fit in the 4 bytes left/);
    await expect(client.checkpoints.listAll(DOM)).rejects.toThrow(/checkpoint list holds 1 entries but says 2/);
    expect(client.closed).toBe(false);
    await client.close();
  });

  it('looks up (415), reads XML (412), finds the parent (416) and deletes (417) by checkpoint', async () => {
    const { client, seen } = await connectTo((conn, call) => {
      if (call.procedure === 412) conn.reply(call, (w) => writeString(w, '<domaincheckpoint><name>cp2</name></domaincheckpoint>'));
      else if (call.procedure === 417) conn.reply(call);
      else conn.reply(call, (w) => writeCheckpoint(w, call.procedure === 415 ? CP2 : CP1));
    });
    expect(await client.checkpoints.lookupByName(DOM, 'cp2')).toEqual(CP2);
    expect(await client.checkpoints.getXMLDesc(CP2, VIR_DOMAIN_CHECKPOINT_XML_NO_DOMAIN)).toBe('<domaincheckpoint><name>cp2</name></domaincheckpoint>');
    expect(await client.checkpoints.getParent(CP2)).toEqual(CP1);
    await client.checkpoints.delete(CP2, VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY);
    expect(seen.map((s) => s.header.procedure)).toEqual([415, 412, 416, 417]);
    expect(args(seen[0]!.payload, (r) => ({ dom: readDomain(r), name: readString(r), flags: r.uint32() }))).toEqual({ dom: DOM, name: 'cp2', flags: 0 });
    const byCheckpoint = (p: Buffer): unknown => args(p, (r) => ({ cp: readCheckpoint(r), flags: r.uint32() }));
    expect(byCheckpoint(seen[1]!.payload)).toEqual({ cp: CP2, flags: 2 });
    expect(byCheckpoint(seen[2]!.payload)).toEqual({ cp: CP2, flags: 0 });
    expect(byCheckpoint(seen[3]!.payload)).toEqual({ cp: CP2, flags: 2 });
    await client.close();
  });

  it('turns "no such checkpoint" into a LibvirtError with VIR_ERR_NO_DOMAIN_CHECKPOINT (103)', async () => {
    const { client } = await connectTo((conn, call) => replyError(conn, call, VIR_ERR_NO_DOMAIN_CHECKPOINT, "Domain checkpoint not found: no domain checkpoint with matching name 'x'"));
    const err = await client.checkpoints.lookupByName(DOM, 'x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtError);
    expect(err).toMatchObject({ code: 103, procedure: 'DomainCheckpointLookupByName' });
    await client.close();
  });

  it('refuses the flag combinations libvirt refuses client-side, before sending anything', async () => {
    const { client, seen } = await connectTo((conn, call) => conn.reply(call));
    await expect(client.checkpoints.createXML(DOM, '<domaincheckpoint/>', VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE_VALIDATE)).rejects.toBeInstanceOf(LibvirtUsageError);
    await expect(
      client.checkpoints.createXML(DOM, '<domaincheckpoint/>', VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE | VIR_DOMAIN_CHECKPOINT_CREATE_QUIESCE),
    ).rejects.toBeInstanceOf(LibvirtUsageError);
    await expect(client.checkpoints.delete(CP1, VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN | VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN_ONLY)).rejects.toBeInstanceOf(
      LibvirtUsageError,
    );
    expect(seen).toHaveLength(0);
    await client.close();
  });
});
