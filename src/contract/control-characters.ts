// Control characters in tenant text: what Nova's and Glance's validators refuse in names and
// metadata (C0, DEL and C1: U+0000-U+001F, U+007F-U+009F). A name or metadata item stored with one
// reaches terminals, logs and other tenants' listings, where it can forge lines or drive a
// terminal (ANSI escapes start with ESC or the C1 CSI). The API and the image service refuse them
// with the same refinement; snapctl escapes them in what it prints.
import { z } from 'zod';

/** Unicode's Cc category is exactly U+0000-U+001F and U+007F-U+009F. */
const CONTROL_CHARACTER = /\p{Cc}/u;
/** Every control character of a text, for replacing. */
export const CONTROL_CHARACTERS = /\p{Cc}/gu;

export const NO_CONTROL_CHARACTERS_MESSAGE = 'must not contain control characters (U+0000-U+001F, U+007F-U+009F)';

export function hasControlCharacter(text: string): boolean {
  return CONTROL_CHARACTER.test(text);
}

/** The refinement both the compute API and the image service apply to names and metadata. */
export function withoutControlCharacters<S extends z.ZodType<string>>(schema: S): z.ZodEffects<S> {
  return schema.refine((text) => !hasControlCharacter(text), NO_CONTROL_CHARACTERS_MESSAGE);
}
