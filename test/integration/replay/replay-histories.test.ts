// Replays every recorded history against today's workflow code: a change that would make a
// running snapshot take a different path after a worker restart fails here, not in production.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from '@temporalio/worker';
import { HISTORIES_DIR } from '../../support/histories';

const files = readdirSync(HISTORIES_DIR).filter((f) => f.endsWith('.json'));

describe('recorded workflow histories', () => {
  it('exist for the main branches', () => {
    expect(files).toEqual(expect.arrayContaining(['live.json', 'cold-running.json', 'cold-paused.json', 'shut-off.json', 'upload-failure.json', 'instance-vanished.json']));
  });

  it('replay deterministically against the current workflow code', async () => {
    // The SDK converts the CLI's JSON form itself.
    const histories = files.map((file) => ({ workflowId: file, history: JSON.parse(readFileSync(join(HISTORIES_DIR, file), 'utf8')) as unknown }));
    const failures: string[] = [];
    for await (const result of Worker.runReplayHistories({ workflowsPath: require.resolve('../../../src/workflows') }, histories)) {
      if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
    }
    expect(failures).toEqual([]);
  });
});
