// Machine facts printed with every run: numbers without the machine they came from are noise.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import { promisify } from 'node:util';
import { kvmUsable } from '../../src/testing/instance-layout';
import { cachedGuest } from '../../src/testing/guest/guest-builder';
import { describeGuestHypervisor } from '../../src/testing/guest/kvm-probe';
import type { Row } from './table';

const execFileAsync = promisify(execFile);

async function firstLine(tool: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileAsync(tool, args, { encoding: 'utf8' });
    return stdout.split('\n')[0]?.trim() ?? '';
  } catch {
    return 'unknown';
  }
}

async function hypervisorVersions(): Promise<string> {
  try {
    const { stdout } = await execFileAsync('virsh', ['-c', 'qemu:///system', 'version'], { encoding: 'utf8' });
    const lib = /Using library: (.+)/.exec(stdout)?.[1]?.trim() ?? '?';
    const hv = /Running hypervisor: (.+)/.exec(stdout)?.[1]?.trim() ?? '?';
    return `${lib}; ${hv}`;
  } catch {
    return 'unknown';
  }
}

async function cpuModel(): Promise<string> {
  const info = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  return /model name\s*:\s*(.+)/.exec(info)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown';
}

export async function machineFacts(): Promise<Row[]> {
  return [
    { fact: 'date (UTC)', value: new Date().toISOString() },
    { fact: 'cpu', value: `${await cpuModel()} × ${os.availableParallelism()}` },
    { fact: 'memory', value: `${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB total, ${(os.freemem() / 1024 ** 3).toFixed(1)} GiB free` },
    { fact: 'load average (1/5/15 min)', value: os.loadavg().map((l) => l.toFixed(2)).join(' / ') },
    { fact: 'KVM', value: kvmUsable() ? 'yes (/dev/kvm)' : 'no (TCG)' },
    { fact: 'test guests', value: await describeGuestHypervisor(await cachedGuest()) },
    { fact: 'libvirt; QEMU', value: await hypervisorVersions() },
    { fact: 'qemu-img', value: await firstLine('qemu-img', ['--version']) },
    { fact: 'node', value: process.version },
    { fact: 'kernel', value: `${os.type()} ${os.release()}` },
  ];
}
