// Nova's parameter_types.name and .metadata, as createImage applies them (Nova answers 400).
import { CreateImageActionSchema, ImageNameSchema, INVALID_NAME_MESSAGE } from '../../../src/api/api-schemas';
import { validationMessage } from '../../../src/api/api-errors';

const nameOk = (name: string) => ImageNameSchema.safeParse(name).success;
const metadataOk = (metadata: Record<string, string>) => CreateImageActionSchema.safeParse({ createImage: { name: 's', metadata } }).success;

describe("Nova's name format", () => {
  it('accepts printable characters of any script, with spaces inside', () => {
    for (const name of ['snap', 'snap 1', 'nightly: db-01 (2024)', 'é ü ß', '日本語のスナップショット', 'a\u00a0b', 'a\u3000b', '!"#$%&\'()*+,-./']) {
      expect(nameOk(name)).toBe(true);
    }
  });

  it('refuses control and format characters anywhere, as Nova answers 400', () => {
    for (const name of ['a\u0000b', '\u0000', 'a\nb', 'a\tb', 'a\u007fb', 'a\u0085b', 'a\u200bb', 'a\ufeffb', 'a\u00adb', 'a\ud800b', 'a\ue000b']) {
      expect(nameOk(name)).toBe(false);
    }
  });

  it('refuses line and paragraph separators, characters above U+FFFF, and a space separator first or last', () => {
    for (const name of ['a\u2028b', 'a\u2029b', 'snap \u{1F600}', ' leading', 'trailing ', '\u00a0nbsp', 'ideographic\u3000', '\u2003em']) {
      expect(nameOk(name)).toBe(false);
    }
  });

  it('refuses the trailing newline that Python\'s `$` lets through in Nova', () => {
    expect(nameOk('snap\n')).toBe(false);
  });

  it("answers Nova's InvalidName text for a format failure, and the field detail for a length failure", () => {
    const body = { createImage: { name: 'a\u0000b' } };
    const bad = CreateImageActionSchema.safeParse(body);
    expect(bad.success).toBe(false);
    if (!bad.success) expect(validationMessage(bad.error.issues[0], body)).toBe(INVALID_NAME_MESSAGE);
    const long = { createImage: { name: 'x'.repeat(256) } };
    const tooLong = CreateImageActionSchema.safeParse(long);
    expect(tooLong.success).toBe(false);
    if (!tooLong.success) expect(validationMessage(tooLong.error.issues[0], long)).toMatch(/^Invalid input for field\/attribute createImage\.name\. /);
  });
});

describe("Nova's metadata rules", () => {
  it('refuses keys outside its pattern, control characters included', () => {
    expect(metadataOk({ 'os:type': 'linux', 'a.b-c_d e': '' })).toBe(true);
    for (const key of ['k\u0000', 'k\n', '\tk', 'ключ', '']) expect(metadataOk({ [key]: 'v' })).toBe(false);
  });

  it('takes any value of up to 255 characters, counted as Nova counts them', () => {
    expect(metadataOk({ k: 'v'.repeat(255) })).toBe(true);
    expect(metadataOk({ k: 'v'.repeat(256) })).toBe(false);
    // 255 characters of 2 UTF-16 units each
    expect(metadataOk({ k: '\u{1F600}'.repeat(255) })).toBe(true);
    expect(metadataOk({ k: '\u{1F600}'.repeat(256) })).toBe(false);
    // Nova puts no character rule on values; here control characters are refused (below).
    expect(metadataOk({ k: 'line 1\nline 2' })).toBe(false);
  });

  it('refuses control characters in values (C0, DEL, C1: line breaks and ANSI escapes), as the image service does', () => {
    for (const value of ['\u001b[2J\u001b[31mowned', 'a\u0000b', 'a\rb', 'a\u0007', 'a\u007fb', 'a\u0085b', 'a\u009b31mb', 'a\u009fb']) {
      expect(metadataOk({ k: value })).toBe(false);
    }
    for (const value of ['printable: é ü ß 日本 \u{1F600}', 'a\u00a0b', 'a\u00a0', '~!@#$%^&*()']) expect(metadataOk({ k: value })).toBe(true);
    const body = { createImage: { name: 's', metadata: { k: '\u001b]0;title\u0007' } } };
    const bad = CreateImageActionSchema.safeParse(body);
    expect(bad.success).toBe(false);
    if (!bad.success) expect(validationMessage(bad.error.issues[0], body)).toMatch(/^Invalid input for field\/attribute createImage\.metadata\.k\. .*control characters/);
  });
});
