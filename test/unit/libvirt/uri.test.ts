// URI parsing and socket resolution, following libvirt's remote driver rules.
import { LibvirtUsageError, parseUri, resolveTarget } from '../../../src/libvirt';
import type { ResolveEnv } from '../../../src/libvirt/uri';

const env = (over: Partial<ResolveEnv> = {}): ResolveEnv => ({ uid: 0, home: '/root', xdgRuntimeDir: undefined, exists: () => false, ...over });

describe('parseUri', () => {
  it('keeps driver and path, strips transport and host from the name sent to the daemon', () => {
    expect(parseUri('qemu:///system')).toMatchObject({ driver: 'qemu', transport: 'unix', host: '', daemonUri: 'qemu:///system' });
    expect(parseUri('qemu+tcp://kvm-01:16600/system')).toMatchObject({ transport: 'tcp', host: 'kvm-01', port: 16600, daemonUri: 'qemu:///system' });
    expect(parseUri('qemu+tcp://[::1]/system')).toMatchObject({ host: '::1', port: null });
    expect(parseUri('test:///default')).toMatchObject({ driver: 'test', daemonUri: 'test:///default' });
    expect(parseUri('qemu:///system?socket=/tmp/s&foo=bar')).toMatchObject({ socketParam: '/tmp/s', daemonUri: 'qemu:///system?foo=bar' });
  });

  it('rejects malformed URIs, unsupported drivers and transports', () => {
    expect(() => parseUri('not a uri')).toThrow(LibvirtUsageError);
    expect(() => parseUri('xen:///system')).toThrow(/unsupported libvirt driver/);
    expect(() => parseUri('qemu+ssh://host/system')).toThrow(/unsupported transport "ssh"/);
    expect(() => parseUri('qemu+tcp:///system')).toThrow(/needs a host/);
    expect(() => parseUri('qemu+tcp://h:70000/system')).toThrow(/port out of range/);
  });
});

describe('resolveTarget', () => {
  it('system → libvirtd socket, or the modular virtqemud socket when present', () => {
    expect(resolveTarget(parseUri('qemu:///system'), {}, env())).toEqual({ kind: 'unix', path: '/var/run/libvirt/libvirt-sock' });
    expect(resolveTarget(parseUri('qemu:///system'), { readonly: true }, env())).toEqual({ kind: 'unix', path: '/var/run/libvirt/libvirt-sock-ro' });
    const modular = env({ exists: (p) => p === '/var/run/libvirt/virtqemud-sock' });
    expect(resolveTarget(parseUri('qemu:///system'), {}, modular)).toEqual({ kind: 'unix', path: '/var/run/libvirt/virtqemud-sock' });
  });

  it('session → $XDG_RUNTIME_DIR/libvirt, else ~/.cache/libvirt', () => {
    expect(resolveTarget(parseUri('qemu:///session'), {}, env({ uid: 1000, xdgRuntimeDir: '/run/user/1000' }))).toEqual({ kind: 'unix', path: '/run/user/1000/libvirt/libvirt-sock' });
    expect(resolveTarget(parseUri('qemu:///session'), {}, env({ uid: 1000, home: '/home/u' }))).toEqual({ kind: 'unix', path: '/home/u/.cache/libvirt/libvirt-sock' });
  });

  it('test:///default goes to the system daemon for root and the session daemon otherwise', () => {
    expect(resolveTarget(parseUri('test:///default'), {}, env())).toEqual({ kind: 'unix', path: '/var/run/libvirt/libvirt-sock' });
    expect(resolveTarget(parseUri('test:///default'), {}, env({ uid: 1000, xdgRuntimeDir: '/run/user/1000' }))).toEqual({ kind: 'unix', path: '/run/user/1000/libvirt/libvirt-sock' });
  });

  it('option and ?socket= override; tcp defaults to port 16509', () => {
    expect(resolveTarget(parseUri('qemu:///system?socket=/a/b'), {}, env())).toEqual({ kind: 'unix', path: '/a/b' });
    expect(resolveTarget(parseUri('qemu:///system?socket=/a/b'), { socketPath: '/c' }, env())).toEqual({ kind: 'unix', path: '/c' });
    expect(() => resolveTarget(parseUri('qemu:///system'), { socketPath: 'rel/path' }, env())).toThrow(/must be absolute/);
    expect(resolveTarget(parseUri('qemu+tcp://h/system'), {}, env())).toEqual({ kind: 'tcp', host: 'h', port: 16509 });
  });
});
