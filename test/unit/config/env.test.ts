import { z } from 'zod';
import { EnvBooleanSchema, ImageUrlSchema, InvalidEnvironment, parseEnv } from '../../../src/config/env';
import { issueText, parseOrThrow } from '../../../src/config/validation';

describe('environment building blocks', () => {
  it('reads switches as true/false or 1/0 and nothing looser', () => {
    expect(['true', '1', 'false', '0'].map((v) => EnvBooleanSchema.parse(v))).toEqual([true, true, false, false]);
    for (const v of ['yes', 'TRUE', '', 'on']) expect(EnvBooleanSchema.safeParse(v).success).toBe(false);
  });

  it('defaults the image URL and drops its trailing slash', () => {
    expect(ImageUrlSchema.parse(undefined)).toBe('http://127.0.0.1:9292');
    expect(ImageUrlSchema.parse('http://images:9292/')).toBe('http://images:9292');
    expect(ImageUrlSchema.safeParse('not a url').success).toBe(false);
  });

  it('names every rejected variable', () => {
    const schema = z.object({ A_PORT: z.coerce.number().int(), A_ON: EnvBooleanSchema });
    expect(() => parseEnv(schema, { A_PORT: 'x', A_ON: 'maybe' }, 'test')).toThrow(InvalidEnvironment);
    expect(() => parseEnv(schema, { A_PORT: 'x', A_ON: 'maybe' }, 'test')).toThrow(/^invalid test environment: A_PORT: .+; A_ON: /);
    expect(parseEnv(schema, { A_PORT: '80', A_ON: '1' }, 'test')).toEqual({ A_PORT: 80, A_ON: true });
  });
});

describe('issueText', () => {
  it('names each issue by its path, a whole-value issue by the root label or by its message alone', () => {
    const refined = z.object({ a: z.string() }).refine(() => false, 'does not hold');
    const err = refined.safeParse({ a: 1 });
    expect(err.success).toBe(false);
    if (!err.success) expect(issueText(err.error)).toBe('a: Expected string, received number');
    const whole = refined.safeParse({ a: 'x' });
    if (!whole.success) {
      expect(issueText(whole.error)).toBe('does not hold');
      expect(issueText(whole.error, 'body')).toBe('body: does not hold');
    }
    expect(() => parseOrThrow(z.number(), 'x', (issues) => new RangeError(issues))).toThrow(RangeError);
  });
});
