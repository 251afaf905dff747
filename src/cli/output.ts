// Plain-text tables and key/value listings for snapctl's stdout; --json prints the API's JSON instead.
// Every value is a server's text, so each is escaped for the terminal (terminal-text.ts).
import { printable, printableJson } from './terminal-text';

export interface Output {
  json: boolean;
  write(text: string): void;
}

export function table(headers: string[], rows: (string | number | null | undefined)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (c === null || c === undefined ? '-' : printable(String(c)))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return `${cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ')).join('\n')}\n`;
}

export function keyValues(entries: [string, unknown][]): string {
  const shown = entries.map(([k, v]) => [printable(k), v === null || v === undefined ? '-' : printable(typeof v === 'object' ? JSON.stringify(v) : String(v))] as const);
  const width = Math.max(...shown.map(([k]) => k.length));
  return `${shown.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n')}\n`;
}

/** One line of text made from a server's values, escaped, with its newline. */
export function line(text: string): string {
  return `${printable(text)}\n`;
}

export function emit(out: Output, json: unknown, text: () => string): void {
  out.write(out.json ? `${printableJson(json)}\n` : text());
}
