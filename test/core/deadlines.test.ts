import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Deadlines } from '../../src/core/deadlines.js';

describe('deadline queues', () => {
  it('fires each deadline once, in order, after its duration; cancelled ones never fire', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    let now = 0;
    const deadlines = new Deadlines(() => now);
    const fired: string[] = [];
    const a = deadlines.arm(100, (x: string) => fired.push(x), 'a');
    now = 10;
    deadlines.arm(100, (x: string) => fired.push(x), 'b');
    const c = deadlines.arm(100, (x: string) => fired.push(x), 'c');
    deadlines.arm(50, (x: string) => fired.push(x), 'short');
    deadlines.cancel(c);
    now = 60;
    t.mock.timers.tick(60);
    assert.deepEqual(fired, ['short']);
    now = 100;
    t.mock.timers.tick(40);
    assert.deepEqual(fired, ['short', 'a']);
    now = 110;
    t.mock.timers.tick(10);
    assert.deepEqual(fired, ['short', 'a', 'b']);
    deadlines.cancel(a); // already fired: a no-op
    now = 500;
    t.mock.timers.tick(400);
    assert.deepEqual(fired, ['short', 'a', 'b']);
    deadlines.close();
  });

  it('re-arms for the next entry after a cancelled head and keeps working after close/re-use', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    let now = 0;
    const deadlines = new Deadlines(() => now);
    const fired: number[] = [];
    const first = deadlines.arm(100, (x: number) => fired.push(x), 1);
    now = 30;
    deadlines.arm(100, (x: number) => fired.push(x), 2);
    deadlines.cancel(first);
    now = 100;
    t.mock.timers.tick(100);
    assert.deepEqual(fired, []);
    now = 130;
    t.mock.timers.tick(30);
    assert.deepEqual(fired, [2]);
    deadlines.close();
  });
});
