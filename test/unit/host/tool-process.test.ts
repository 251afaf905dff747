import { parseQemuImgProgress, runTool, ToolFailed } from '../../../src/host/tool-process';

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

describe('parseQemuImgProgress', () => {
  it('takes the last percentage of a qemu-img -p chunk', () => {
    expect(parseQemuImgProgress('    (0.00/100%)\r    (12.50/100%)\r    (100.00/100%)\r')).toBe(1);
    expect(parseQemuImgProgress('    (37.5/100%)\r')).toBe(0.375);
    expect(parseQemuImgProgress('no progress here')).toBeUndefined();
  });
});
