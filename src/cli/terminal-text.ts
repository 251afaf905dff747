// What snapctl prints that came from a server (names, metadata, steps, error texts) goes through
// here: a control character could forge output lines or, as an ANSI escape (ESC or the C1 CSI),
// retitle, clear or reprogram the operator's terminal. Each is shown escaped instead.
import { CONTROL_CHARACTERS } from '../contract';

function escaped(char: string): string {
  return `\\x${char.charCodeAt(0).toString(16).padStart(2, '0')}`;
}

/** `text` with every control character (U+0000-U+001F, U+007F-U+009F) written as \xNN. */
export function printable(text: string): string {
  return text.replace(CONTROL_CHARACTERS, escaped);
}

/**
 * JSON for --json: JSON.stringify escapes C0 in strings but not DEL and C1, which are escaped
 * here as \u00NN, so the output is the same JSON document and still safe on a terminal.
 */
export function printableJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(CONTROL_CHARACTERS, (char) => (char === '\n' ? char : `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`));
}
