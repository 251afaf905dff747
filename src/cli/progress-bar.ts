// One-line progress rendering for `snapshot --wait`: step name, a bar and bytes. On a terminal the
// line is redrawn in place; otherwise a line is printed only when the step changes, so logs of CI
// runs stay readable.
import { printable } from './terminal-text';

export interface ProgressView {
  step: string;
  bytesDone: number;
  bytesTotal: number;
  mode?: string;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

export function renderProgress(p: ProgressView, width = 30): string {
  const ratio = p.bytesTotal > 0 ? Math.min(1, p.bytesDone / p.bytesTotal) : 0;
  const filled = Math.round(ratio * width);
  const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
  const bytes = p.bytesTotal > 0 ? ` ${formatBytes(p.bytesDone)}/${formatBytes(p.bytesTotal)} ${Math.round(ratio * 100)}%` : '';
  const mode = p.mode === undefined ? '' : ` (${printable(p.mode)})`;
  return `${bar} ${printable(p.step)}${mode}${bytes}`;
}

export class ProgressPrinter {
  private lastStep: string | undefined;
  private drawn = false;

  constructor(private readonly out: NodeJS.WriteStream) {}

  update(p: ProgressView): void {
    const line = renderProgress(p);
    if (this.out.isTTY === true) {
      this.out.write(`\r\x1b[2K${line}`);
      this.drawn = true;
    } else if (p.step !== this.lastStep) {
      this.out.write(`${line}\n`);
    }
    this.lastStep = p.step;
  }

  finish(): void {
    if (this.drawn) this.out.write('\n');
    this.drawn = false;
  }
}
