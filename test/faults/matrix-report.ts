// The matrix as a table (fault × step rows, one column per mode) for the terminal and for
// docs/faults.md, with the machine facts that make its timings comparable.
import { execFile } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { promisify } from 'node:util';
import { cachedGuest } from '../../src/testing/guest/guest-builder';
import { describeGuestHypervisor } from '../../src/testing/guest/kvm-probe';
import type { CellResult } from '../support/fault-cell';
import { FAULT_LABEL, FAULTS, MODES, STEP_LABEL, STEPS } from '../support/fault-matrix';

const run = promisify(execFile);

function cellText(r: CellResult | undefined): string {
  if (!r) return '–';
  if (r.outcome === 'n/a') return 'n/a';
  const time = r.recoverMs === undefined ? '' : ` ${(r.recoverMs / 1000).toFixed(0)}s`;
  const mark = r.ok ? '✔' : '✘';
  const why = r.ok ? '' : ` (${r.violations.join('; ').replace(/\|/g, '/')})`;
  return `${mark} ${r.outcome}${time}${why}`;
}

export function matrixTable(results: readonly CellResult[]): string {
  const lines = [`| fault | step | ${MODES.join(' | ')} |`, `|---|---|${MODES.map(() => '---').join('|')}|`];
  for (const fault of FAULTS) {
    for (const step of STEPS) {
      const row = MODES.map((mode) => results.find((r) => r.fault === fault && r.step === step && r.mode === mode));
      if (row.every((r) => r === undefined || r.outcome === 'n/a')) continue;
      lines.push(`| ${FAULT_LABEL[fault]} | ${STEP_LABEL[step]} | ${row.map(cellText).join(' | ')} |`);
    }
  }
  return lines.join('\n');
}

export function summary(results: readonly CellResult[]): string {
  const ran = results.filter((r) => r.outcome !== 'n/a');
  const bad = ran.filter((r) => !r.ok);
  return `${ran.length} cells run, ${ran.length - bad.length} in a defined, expected end state, ${bad.length} violations; ${results.length - ran.length} n/a`;
}

async function versionLine(command: string, args: string[]): Promise<string> {
  try {
    return (await run(command, args)).stdout.split('\n')[0]?.trim() ?? '?';
  } catch {
    return `${command}: not found`;
  }
}

export async function machineFacts(): Promise<string> {
  return [
    `- CPUs: ${cpus().length} × ${cpus()[0]?.model ?? '?'}`,
    `- memory: ${(totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    `- guests: real Linux guests writing an append log (cold-paused: paused after booting); ${await describeGuestHypervisor(await cachedGuest())}`,
    `- ${await versionLine('libvirtd', ['--version'])}`,
    `- ${await versionLine('qemu-system-x86_64', ['--version'])}`,
    `- Node ${process.version}`,
  ].join('\n');
}
