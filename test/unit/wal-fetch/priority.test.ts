import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';

test('the wal-fetch workers run at nice 10 (PostgreSQL keeps the CPU it replays with), and so do their children', () => {
  const worker = new URL('../../../src/wal-fetch/priority.js', import.meta.url).href;
  const script = `
    const { yieldToRecovery } = await import(${JSON.stringify(worker)});
    const os = await import('node:os');
    const { execFileSync } = await import('node:child_process');
    const before = os.getPriority();
    yieldToRecovery();
    const child = Number(execFileSync('sh', ['-c', 'echo $(($(cut -d" " -f19 /proc/$$/stat)))'], { encoding: 'utf8' }).trim());
    console.log(JSON.stringify({ before, after: os.getPriority(), child }));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  const { before, after, child } = JSON.parse(out) as { before: number; after: number; child: number };
  assert.is(after, Math.max(before, 10));
  assert.is(child, after, 'a child started after it inherits the nice value');
});

test.run();
