// Outside text (libvirt's, a tool's, a guest's) on its way into image properties, results and logs.
import { boundedPlainText, hasControlCharacter } from '../../../src/contract';

describe('boundedPlainText', () => {
  it('turns every run of control characters into one space, so the image service accepts the text as a property', () => {
    const libvirt = 'checkpoint c1 cannot be used: internal error:\r\n\u001b[31mbitmap\u0085 inconsistent\u0000';
    const plain = boundedPlainText(libvirt, 255);
    expect(hasControlCharacter(plain)).toBe(false);
    expect(plain).toBe('checkpoint c1 cannot be used: internal error: [31mbitmap  inconsistent ');
  });

  it('cuts at the bound, counting characters, not UTF-16 units', () => {
    expect(boundedPlainText('é'.repeat(300), 255)).toBe(`${'é'.repeat(254)}…`);
    expect([...boundedPlainText('😀'.repeat(300), 10)]).toHaveLength(10);
    expect(boundedPlainText('short', 255)).toBe('short');
  });
});
