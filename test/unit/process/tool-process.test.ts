import { z } from 'zod';
import { parseQemuImgProgress, parseToolJson, runTool, runToolOutput, ToolFailed, ToolOutputInvalid } from '../../../src/process/tool-process';

describe('runTool', () => {
  it('resolves on exit 0 and rejects with the exit code and stderr otherwise', async () => {
    await expect(runTool('true', [])).resolves.toBeUndefined();
    const err = await runTool('sh', ['-c', 'echo "qemu-img: error while writing: No space left on device" >&2; exit 1']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ToolFailed);
    expect((err as ToolFailed).exitCode).toBe(1);
    expect((err as ToolFailed).noSpace).toBe(true);
  });

  it('kills the tool when the signal aborts', async () => {
    const controller = new AbortController();
    const started = Date.now();
    const run = runTool('sleep', ['30'], { signal: controller.signal });
    setTimeout(() => controller.abort(new Error('activity cancelled')), 100);
    await expect(run).rejects.toThrow('activity cancelled');
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('reports a missing binary as a ToolFailed', async () => {
    await expect(runTool('definitely-not-a-tool-here', [])).rejects.toBeInstanceOf(ToolFailed);
  });
});

describe('runToolOutput', () => {
  it('returns an exit code the caller takes as an answer, and fails on any other', async () => {
    await expect(runToolOutput('sh', ['-c', 'echo out; exit 1'], { okExitCodes: [0, 1] })).resolves.toEqual({ stdout: 'out\n', stderr: '', exitCode: 1 });
    await expect(runToolOutput('sh', ['-c', 'exit 0'])).resolves.toMatchObject({ exitCode: 0 });
    const err = await runToolOutput('sh', ['-c', 'echo broken >&2; exit 2'], { okExitCodes: [0, 1] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ToolFailed);
    expect(err).toMatchObject({ exitCode: 2, stderr: 'broken\n' });
  });
});

describe('parseToolJson', () => {
  const Info = z.object({ 'virtual-size': z.number().int() });
  it('returns what the schema reads, and a ToolOutputInvalid for anything else (never a NaN)', () => {
    expect(parseToolJson('qemu-img info', Info, '{"virtual-size": 1048576, "format": "qcow2"}')).toEqual({ 'virtual-size': 1048576 });
    expect(() => parseToolJson('qemu-img info', Info, '{"format": "qcow2"}')).toThrow(ToolOutputInvalid);
    expect(() => parseToolJson('qemu-img info', Info, '{"virtual-size": "big"}')).toThrow(/virtual-size/);
    expect(() => parseToolJson('qemu-img info', Info, 'not json')).toThrow(ToolOutputInvalid);
  });
});

describe('parseQemuImgProgress', () => {
  it('takes the last percentage of a qemu-img -p chunk', () => {
    expect(parseQemuImgProgress('    (0.00/100%)\r    (12.50/100%)\r    (100.00/100%)\r')).toBe(1);
    expect(parseQemuImgProgress('    (37.5/100%)\r')).toBe(0.375);
    expect(parseQemuImgProgress('no progress here')).toBeUndefined();
  });
});
