// The two documents of libvirt's backup API: <domainbackup> (what virDomainBackupBegin copies and
// how it serves it) and <domaincheckpoint> (the point in time a later incremental starts from),
// built from validated names and paths only, and read back from what libvirt reports.
// Schemas: libvirt's docs/schemas/domainbackup.rng and domaincheckpoint.rng.
import { XMLParser } from 'fast-xml-parser';
import { z } from 'zod';
import { assertSafePath } from '../fs/safe-path';
import { xmlEscape } from './xml-escape';
import { errorMessage } from '../contract';

/** A name or spec that libvirt would refuse, or that we refuse to put into its XML. */
export class BackupXmlError extends Error {
  override readonly name = 'BackupXmlError';
  /** the same input is refused again */
  readonly retryable = false;
}

/** libvirt's checkpointName (no leading dot, no slash), bounded so it fits in a bitmap name. */
const CHECKPOINT_NAME_RE = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$/;
/** libvirt's diskTargetDev, without the obsolete "ioemu:" prefix. */
const DISK_TARGET_RE = /^(fd|hd|sd|vd|xvd|ubd)[A-Za-z0-9_]{1,26}$/;
/** NBD export and bitmap names: ours only, so the same alphabet as a checkpoint name. */
const EXPORT_NAME_RE = CHECKPOINT_NAME_RE;
/** sun_path is 108 bytes with the NUL: QEMU cannot listen on a longer socket path. */
const UNIX_SOCKET_PATH_MAX = 107;

export function assertCheckpointName(name: string): string {
  if (typeof name !== 'string' || !CHECKPOINT_NAME_RE.test(name)) throw new BackupXmlError(`invalid checkpoint name: ${JSON.stringify(name)}`);
  return name;
}

export function assertDiskTarget(target: string): string {
  if (typeof target !== 'string' || !DISK_TARGET_RE.test(target)) throw new BackupXmlError(`invalid disk target: ${JSON.stringify(target)}`);
  return target;
}

function assertExportName(name: string, what: string): string {
  if (typeof name !== 'string' || !EXPORT_NAME_RE.test(name)) throw new BackupXmlError(`invalid ${what}: ${JSON.stringify(name)}`);
  return name;
}

function assertSocketPath(p: string): string {
  assertSafePath(p);
  if (Buffer.byteLength(p) > UNIX_SOCKET_PATH_MAX) throw new BackupXmlError(`NBD socket path is ${Buffer.byteLength(p)} bytes, a unix socket allows ${UNIX_SOCKET_PATH_MAX}: ${p}`);
  return p;
}

function assertUniqueTargets(targets: readonly string[], what: string): void {
  if (targets.length === 0) throw new BackupXmlError(`${what} names no disk`);
  const seen = new Set<string>();
  for (const t of targets) {
    if (seen.has(t)) throw new BackupXmlError(`${what} names disk ${t} twice`);
    seen.add(t);
  }
}

export interface PullBackupDisk {
  /** the disk's <target dev>, e.g. "vda" */
  target: string;
  /**
   * The copy-before-write qcow2: guest writes during the job park the old data here. libvirt
   * creates and deletes it, unless the backup starts with VIR_DOMAIN_BACKUP_BEGIN_REUSE_EXTERNAL.
   */
  scratchFile: string;
  /** the NBD export name; libvirt's default is the target */
  exportName?: string;
  /** incremental: the dirty-bitmap name the export advertises (qemu:dirty-bitmap:<name>) */
  exportBitmap?: string;
}

export interface PullBackupSpec {
  /** the NBD server's unix socket; QEMU creates it and removes it when the job ends */
  socketPath: string;
  /** the disks that take part; the domain's other disks do not */
  disks: readonly PullBackupDisk[];
  /** the checkpoint an incremental backup starts from; without it the export is a full one */
  incrementalFrom?: string;
}

/** <domainbackup mode='pull'>: the disks' point-in-time content, served over NBD on a unix socket. */
export function buildPullBackupXml(spec: PullBackupSpec): string {
  const socket = assertSocketPath(spec.socketPath);
  assertUniqueTargets(
    spec.disks.map((d) => assertDiskTarget(d.target)),
    'the backup',
  );
  const lines = [`<domainbackup mode='pull'>`];
  if (spec.incrementalFrom !== undefined) lines.push(`  <incremental>${xmlEscape(assertCheckpointName(spec.incrementalFrom))}</incremental>`);
  lines.push(`  <server transport='unix' socket='${xmlEscape(socket)}'/>`, '  <disks>');
  for (const d of spec.disks) {
    let attrs = `name='${xmlEscape(d.target)}' backup='yes' type='file'`;
    if (d.exportName !== undefined) attrs += ` exportname='${xmlEscape(assertExportName(d.exportName, 'NBD export name'))}'`;
    if (d.exportBitmap !== undefined) attrs += ` exportbitmap='${xmlEscape(assertExportName(d.exportBitmap, 'export bitmap name'))}'`;
    lines.push(
      `    <disk ${attrs}>`,
      `      <scratch file='${xmlEscape(assertSafePath(d.scratchFile))}'/>`,
      `      <driver type='qcow2'/>`,
      '    </disk>',
    );
  }
  lines.push('  </disks>', '</domainbackup>');
  return lines.join('\n');
}

export interface CheckpointDisk {
  target: string;
  /** name of the disk's persistent bitmap; libvirt's default is the checkpoint name */
  bitmap?: string;
}

export interface CheckpointSpec {
  name: string;
  description?: string;
  /** the disks the checkpoint tracks (checkpoint='bitmap'); the domain's other disks are left out */
  disks: readonly CheckpointDisk[];
}

/** <domaincheckpoint>: for virDomainCheckpointCreateXML, or virDomainBackupBegin's checkpoint argument. */
export function buildCheckpointXml(spec: CheckpointSpec): string {
  const name = assertCheckpointName(spec.name);
  assertUniqueTargets(
    spec.disks.map((d) => assertDiskTarget(d.target)),
    'the checkpoint',
  );
  const lines = ['<domaincheckpoint>', `  <name>${xmlEscape(name)}</name>`];
  if (spec.description !== undefined) lines.push(`  <description>${xmlEscape(spec.description)}</description>`);
  lines.push('  <disks>');
  for (const d of spec.disks) {
    const bitmap = d.bitmap === undefined ? '' : ` bitmap='${xmlEscape(assertExportName(d.bitmap, 'bitmap name'))}'`;
    lines.push(`    <disk name='${xmlEscape(d.target)}' checkpoint='bitmap'${bitmap}/>`);
  }
  lines.push('  </disks>', '</domaincheckpoint>');
  return lines.join('\n');
}

// ---- reading back what libvirt reports ----

const ATTR = '@_';
const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: ATTR,
  parseTagValue: false,
  parseAttributeValue: false,
  isArray: (name, jpath) => name === 'disk' && (jpath === 'domainbackup.disks.disk' || jpath === 'domaincheckpoint.disks.disk'),
});

const Attr = z.string().optional();
const BackupDoc = z.object({
  domainbackup: z
    .object({
      [`${ATTR}mode`]: Attr,
      incremental: z.string().optional(),
      server: z.object({ [`${ATTR}transport`]: Attr, [`${ATTR}socket`]: Attr, [`${ATTR}name`]: Attr, [`${ATTR}port`]: Attr }).passthrough().optional(),
      disks: z
        .object({
          disk: z.array(
            z
              .object({
                [`${ATTR}name`]: z.string(),
                [`${ATTR}backup`]: Attr,
                [`${ATTR}type`]: Attr,
                [`${ATTR}exportname`]: Attr,
                [`${ATTR}exportbitmap`]: Attr,
                [`${ATTR}index`]: Attr,
                scratch: z.object({ [`${ATTR}file`]: Attr, [`${ATTR}dev`]: Attr }).passthrough().optional(),
              })
              .passthrough(),
          ),
        })
        .passthrough()
        .optional(),
    })
    .passthrough(),
});

export interface BackupJobDisk {
  target: string;
  /** false for a disk libvirt lists with backup='no' */
  backup: boolean;
  /** the NBD export name in pull mode (libvirt fills in the default) */
  exportName: string | null;
  exportBitmap: string | null;
  /** scratch file (type='file') or device (type='block') */
  scratch: string | null;
  /** libvirt's index of the scratch node (virDomainSetBlockThreshold) */
  index: number | null;
}

export interface BackupJobDescription {
  mode: 'push' | 'pull';
  /** the checkpoint the backup is incremental from, null for a full one */
  incrementalFrom: string | null;
  /** pull mode: the NBD server's unix socket, when it listens on one */
  socketPath: string | null;
  disks: BackupJobDisk[];
}

function optInt(v: string | undefined, what: string): number | null {
  if (v === undefined) return null;
  if (!/^\d{1,15}$/.test(v)) throw new BackupXmlError(`${what} is not a number: ${JSON.stringify(v)}`);
  return Number(v);
}

function parseDoc<T>(schema: z.ZodType<T>, xml: string, what: string): T {
  let doc: unknown;
  try {
    doc = parser.parse(xml, true);
  } catch (e) {
    throw new BackupXmlError(`${what} is not well-formed XML: ${errorMessage(e)}`);
  }
  const parsed = schema.safeParse(doc);
  if (!parsed.success) throw new BackupXmlError(`unexpected ${what}: ${parsed.error.message}`);
  return parsed.data;
}

/** Reads virDomainBackupGetXMLDesc's answer: where the export is and what each disk uses. */
export function parseBackupXml(xml: string): BackupJobDescription {
  const b = parseDoc(BackupDoc, xml, 'domainbackup XML').domainbackup;
  const mode = b[`${ATTR}mode`] ?? 'push';
  if (mode !== 'push' && mode !== 'pull') throw new BackupXmlError(`unknown backup mode ${JSON.stringify(mode)}`);
  const server = b.server;
  return {
    mode,
    incrementalFrom: b.incremental ?? null,
    socketPath: server && server[`${ATTR}transport`] === 'unix' ? (server[`${ATTR}socket`] ?? null) : null,
    disks: (b.disks?.disk ?? []).map((d) => ({
      target: d[`${ATTR}name`],
      backup: d[`${ATTR}backup`] !== 'no',
      exportName: d[`${ATTR}exportname`] ?? null,
      exportBitmap: d[`${ATTR}exportbitmap`] ?? null,
      scratch: d.scratch?.[`${ATTR}file`] ?? d.scratch?.[`${ATTR}dev`] ?? null,
      index: optInt(d[`${ATTR}index`], `index of disk ${d[`${ATTR}name`]}`),
    })),
  };
}

const CheckpointDoc = z.object({
  domaincheckpoint: z
    .object({
      name: z.string(),
      creationTime: z.string().optional(),
      parent: z.object({ name: z.string() }).passthrough().optional(),
      disks: z
        .object({
          disk: z.array(
            z.object({ [`${ATTR}name`]: z.string(), [`${ATTR}checkpoint`]: Attr, [`${ATTR}bitmap`]: Attr, [`${ATTR}size`]: Attr }).passthrough(),
          ),
        })
        .passthrough()
        .optional(),
    })
    .passthrough(),
});

export interface CheckpointDiskDescription {
  target: string;
  /** false for checkpoint='no' */
  tracked: boolean;
  bitmap: string | null;
  /** bytes changed since the checkpoint (only with VIR_DOMAIN_CHECKPOINT_XML_SIZE) */
  size: number | null;
}

export interface CheckpointDescription {
  name: string;
  parent: string | null;
  /** seconds since the epoch */
  creationTime: number | null;
  disks: CheckpointDiskDescription[];
}

/** Reads virDomainCheckpointGetXMLDesc's answer: its place in the chain and its bitmaps. */
export function parseCheckpointXml(xml: string): CheckpointDescription {
  const c = parseDoc(CheckpointDoc, xml, 'domaincheckpoint XML').domaincheckpoint;
  return {
    name: c.name,
    parent: c.parent?.name ?? null,
    creationTime: optInt(c.creationTime, 'checkpoint creationTime'),
    disks: (c.disks?.disk ?? []).map((d) => ({
      target: d[`${ATTR}name`],
      tracked: d[`${ATTR}checkpoint`] !== 'no',
      bitmap: d[`${ATTR}bitmap`] ?? null,
      size: optInt(d[`${ATTR}size`], `size of disk ${d[`${ATTR}name`]}`),
    })),
  };
}
