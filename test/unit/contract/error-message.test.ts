// The text of anything thrown: duck-typed, so errors from another realm (a vm context, a worker
// thread) read as well as our own, and a thrown non-error reads as its string.
import { runInNewContext } from 'node:vm';
import { errnoCode, errorMessage, errorStack } from '../../../src/contract';

describe('errorMessage, errorStack, errnoCode', () => {
  it('read an error of this realm, of another realm, and a thrown non-error', () => {
    const foreign = runInNewContext('new Error("from another realm")') as unknown;
    expect(foreign instanceof Error).toBe(false);
    expect(errorMessage(foreign)).toBe('from another realm');
    expect(errorStack(foreign)).toMatch(/^Error: from another realm\n\s+at /);
    expect(errorMessage(new Error('ours'))).toBe('ours');
    expect(errorStack(new Error('ours'))).toMatch(/^Error: ours\n\s+at /);
    expect([errorMessage('plain text'), errorStack('plain text'), errorMessage(null), errorStack(undefined)]).toEqual(['plain text', 'plain text', 'null', 'undefined']);
    const stackless = Object.assign(new Error('no stack'), { stack: undefined });
    expect(errorStack(stackless)).toBe('no stack');
  });

  it('errnoCode reads a node:fs code and nothing else', () => {
    expect(errnoCode(Object.assign(new Error('x'), { code: 'ENOSPC' }))).toBe('ENOSPC');
    expect([errnoCode(new Error('x')), errnoCode('ENOSPC'), errnoCode(null)]).toEqual([undefined, undefined, undefined]);
  });
});
