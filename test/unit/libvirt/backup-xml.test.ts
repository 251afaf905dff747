// The <domainbackup> and <domaincheckpoint> builders: the documents libvirt's schemas accept, only
// from names and paths that pass validation, and the readers for what libvirt reports back.
import {
  BackupXmlError,
  assertCheckpointName,
  assertDiskTarget,
  buildCheckpointXml,
  buildPullBackupXml,
  parseBackupXml,
  parseCheckpointXml,
} from '../../../src/host/backup-xml';
import { HostPathError } from '../../../src/fs/safe-path';

describe('buildPullBackupXml', () => {
  it('builds a full pull backup over a unix socket with a scratch file per disk', () => {
    expect(buildPullBackupXml({ socketPath: '/run/snap/w1/nbd.sock', disks: [{ target: 'vda', scratchFile: '/run/snap/w1/vda.scratch' }] })).toBe(
      [
        `<domainbackup mode='pull'>`,
        `  <server transport='unix' socket='/run/snap/w1/nbd.sock'/>`,
        '  <disks>',
        `    <disk name='vda' backup='yes' type='file'>`,
        `      <scratch file='/run/snap/w1/vda.scratch'/>`,
        `      <driver type='qcow2'/>`,
        '    </disk>',
        '  </disks>',
        '</domainbackup>',
      ].join('\n'),
    );
  });

  it('adds the incremental checkpoint, export names and export bitmaps', () => {
    const xml = buildPullBackupXml({
      socketPath: '/w/nbd.sock',
      incrementalFrom: '1525889631',
      disks: [
        { target: 'vda', scratchFile: '/w/vda.scratch', exportName: 'root-disk', exportBitmap: 'since-1525889631' },
        { target: 'vdb', scratchFile: '/w/vdb.scratch' },
      ],
    });
    expect(xml).toContain('<incremental>1525889631</incremental>');
    expect(xml).toContain(`<disk name='vda' backup='yes' type='file' exportname='root-disk' exportbitmap='since-1525889631'>`);
    expect(xml).toContain(`<disk name='vdb' backup='yes' type='file'>`);
  });

  it('refuses unsafe or relative paths, and a socket path longer than sun_path', () => {
    const disks = [{ target: 'vda', scratchFile: '/w/vda.scratch' }];
    expect(() => buildPullBackupXml({ socketPath: "/w/a'b.sock", disks })).toThrow(HostPathError);
    expect(() => buildPullBackupXml({ socketPath: 'nbd.sock', disks })).toThrow(HostPathError);
    expect(() => buildPullBackupXml({ socketPath: '/w/../etc/nbd.sock', disks })).toThrow(HostPathError);
    expect(() => buildPullBackupXml({ socketPath: `/${'d'.repeat(120)}/nbd.sock`, disks })).toThrow(/unix socket allows 107/);
    expect(() => buildPullBackupXml({ socketPath: '/w/nbd.sock', disks: [{ target: 'vda', scratchFile: '/w/<x>.scratch' }] })).toThrow(HostPathError);
  });

  it('refuses bad disk targets, export names and checkpoint names, no disk, and a disk named twice', () => {
    const base = { socketPath: '/w/nbd.sock' };
    const scratchFile = '/w/s';
    expect(() => buildPullBackupXml({ ...base, disks: [] })).toThrow(/names no disk/);
    expect(() => buildPullBackupXml({ ...base, disks: [{ target: 'vda', scratchFile }, { target: 'vda', scratchFile: '/w/t' }] })).toThrow(/vda twice/);
    expect(() => buildPullBackupXml({ ...base, disks: [{ target: "vda'/><x", scratchFile }] })).toThrow(BackupXmlError);
    expect(() => buildPullBackupXml({ ...base, disks: [{ target: 'vda', scratchFile, exportName: 'a b' }] })).toThrow(/NBD export name/);
    expect(() => buildPullBackupXml({ ...base, disks: [{ target: 'vda', scratchFile, exportBitmap: '' }] })).toThrow(/export bitmap name/);
    expect(() => buildPullBackupXml({ ...base, incrementalFrom: '../cp', disks: [{ target: 'vda', scratchFile }] })).toThrow(/checkpoint name/);
  });
});

describe('buildCheckpointXml', () => {
  it('builds a bitmap checkpoint of the named disks, escaping the description', () => {
    expect(buildCheckpointXml({ name: 'snap-0001', description: `nightly <"a" & 'b'>`, disks: [{ target: 'vda' }, { target: 'vdb', bitmap: 'snap-0001-b' }] })).toBe(
      [
        '<domaincheckpoint>',
        '  <name>snap-0001</name>',
        '  <description>nightly &lt;&quot;a&quot; &amp; &apos;b&apos;&gt;</description>',
        '  <disks>',
        `    <disk name='vda' checkpoint='bitmap'/>`,
        `    <disk name='vdb' checkpoint='bitmap' bitmap='snap-0001-b'/>`,
        '  </disks>',
        '</domaincheckpoint>',
      ].join('\n'),
    );
  });

  it('refuses names libvirt refuses or that could break out of the document', () => {
    for (const bad of ['', '.hidden', 'a/b', 'a b', 'x'.repeat(65), 'cp\n', '<cp>', "cp'"]) {
      expect(() => buildCheckpointXml({ name: bad, disks: [{ target: 'vda' }] })).toThrow(BackupXmlError);
    }
    expect(() => buildCheckpointXml({ name: 'ok', disks: [{ target: 'vda', bitmap: 'a/b' }] })).toThrow(/bitmap name/);
    expect(() => buildCheckpointXml({ name: 'ok', disks: [] })).toThrow(/names no disk/);
  });

  it('accepts the names libvirt generates and ours', () => {
    expect(assertCheckpointName('1525889631')).toBe('1525889631');
    expect(assertCheckpointName('snap_a.b-c')).toBe('snap_a.b-c');
    expect(assertCheckpointName('x'.repeat(64))).toHaveLength(64);
    expect(assertDiskTarget('vda')).toBe('vda');
    expect(assertDiskTarget('sdaa')).toBe('sdaa');
    for (const bad of ['vd', 'nvme0', 'VDA', 'ioemu:hda', 'vda;', '']) expect(() => assertDiskTarget(bad)).toThrow(BackupXmlError);
  });
});

describe('parseBackupXml / parseCheckpointXml', () => {
  it('reads the job libvirt 9.0 reports for a pull backup', () => {
    const job = parseBackupXml(`<domainbackup mode='pull'>
  <incremental>cp2</incremental>
  <server transport='unix' socket='/tmp/w/inc.sock'/>
  <disks>
    <disk name='vda' backup='yes' type='file' backupmode='incremental' incremental='cp2' exportname='vda' exportbitmap='backup-vda' index='3'>
      <driver type='qcow2'/>
      <scratch file='/tmp/w/inc.scratch'/>
    </disk>
    <disk name='vdb' backup='no'/>
  </disks>
</domainbackup>`);
    expect(job).toEqual({
      mode: 'pull',
      incrementalFrom: 'cp2',
      socketPath: '/tmp/w/inc.sock',
      disks: [
        { target: 'vda', backup: true, exportName: 'vda', exportBitmap: 'backup-vda', scratch: '/tmp/w/inc.scratch', index: 3 },
        { target: 'vdb', backup: false, exportName: null, exportBitmap: null, scratch: null, index: null },
      ],
    });
  });

  it('reads a checkpoint: numeric names stay strings, the parent, sizes, and the embedded domain is ignored', () => {
    const cp = parseCheckpointXml(`<domaincheckpoint>
  <name>1525889631</name>
  <parent><name>1525880000</name></parent>
  <creationTime>1796199292</creationTime>
  <disks>
    <disk name='vda' checkpoint='bitmap' bitmap='1525889631' size='65536'/>
    <disk name='vdb' checkpoint='no'/>
  </disks>
  <domain type='kvm'><name>g</name><devices><disk type='file'><target dev='vda'/></disk></devices></domain>
</domaincheckpoint>`);
    expect(cp).toEqual({
      name: '1525889631',
      parent: '1525880000',
      creationTime: 1796199292,
      disks: [
        { target: 'vda', tracked: true, bitmap: '1525889631', size: 65536 },
        { target: 'vdb', tracked: false, bitmap: null, size: null },
      ],
    });
  });

  it('refuses what is not such a document', () => {
    expect(() => parseBackupXml('<domainbackup mode="pull"><disks>')).toThrow(BackupXmlError);
    expect(() => parseBackupXml('<domain/>')).toThrow(/unexpected domainbackup XML/);
    expect(() => parseBackupXml(`<domainbackup mode='sideways'/>`)).toThrow(/unknown backup mode/);
    expect(() => parseCheckpointXml('<domaincheckpoint><disks/></domaincheckpoint>')).toThrow(BackupXmlError);
    expect(() => parseCheckpointXml(`<domaincheckpoint><name>c</name><creationTime>soon</creationTime></domaincheckpoint>`)).toThrow(/not a number/);
  });
});
