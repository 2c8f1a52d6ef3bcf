// The one wait helper: what it logs and heartbeats while it waits (the same text in both), and what
// a timeout says. Real timers, small bounds; nothing is asserted about how long a wait took.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  WaitTimeoutError,
  formatDuration,
  notYet,
  waitFor,
  type WaitProgress,
  type WaitReporter,
} from '../../src/util/wait.js';

function recorder(signal?: AbortSignal): WaitReporter & { lines: string[]; beats: WaitProgress[] } {
  const lines: string[] = [];
  const beats: WaitProgress[] = [];
  return {
    lines,
    beats,
    logger: {
      info: (m) => {
        lines.push(m);
      },
    },
    heartbeat: (p) => {
      if (p) beats.push(p);
    },
    ...(signal ? { signal } : {}),
  };
}

describe('waitFor', () => {
  it('returns at once, silently, when the condition already holds', async () => {
    const r = recorder();
    assert.equal(await waitFor({ what: 'x', timeoutMs: 1000, check: () => Promise.resolve(42) }, r), 42);
    assert.deepEqual(r.lines, []);
    assert.deepEqual(r.beats, []);
  });

  it('says what it waits for and its bound, heartbeats progress with the logged text, and how long it took', async () => {
    const r = recorder();
    let n = 0;
    const value = await waitFor(
      {
        what: 'PVC ns/data to be deleted',
        timeoutMs: 60_000,
        intervalMs: 20,
        logEveryMs: 0,
        check: () => Promise.resolve(++n >= 4 ? 'gone' : notYet(`check ${n}: still there`)),
      },
      r,
    );
    assert.equal(value, 'gone');
    assert.equal(r.lines[0], 'waiting up to 1m for PVC ns/data to be deleted: check 1: still there');
    // Every progress line is also a heartbeat's message (and the heartbeat names the wait).
    const progress = r.lines.slice(1, -1);
    assert.ok(progress.length >= 2, r.lines.join('\n'));
    for (const line of progress) {
      assert.match(line, /^waiting for PVC ns\/data to be deleted \([\d.]+s of 1m\): check \d: still there$/);
      assert.ok(
        r.beats.some((b) => b.message === line && b.step === 'wait for PVC ns/data to be deleted'),
        line,
      );
    }
    assert.match(r.lines.at(-1) ?? '', /^waited [\d.]+s for PVC ns\/data to be deleted$/);
  });

  it('a timeout names what it waited for, the bound and the last state seen, with the hint', async () => {
    class SpecificTimeout extends WaitTimeoutError {}
    let n = 0;
    await assert.rejects(
      waitFor({
        what: 'InstallPlan devops to be Installed',
        timeoutMs: 300,
        intervalMs: 50,
        check: () => Promise.resolve(notYet(`state 'Installing' (check ${++n})`)),
        hint: 'check the install job',
        timeoutError: SpecificTimeout,
      }),
      (err: Error) => {
        assert.ok(err instanceof SpecificTimeout);
        assert.equal(err.name, 'SpecificTimeout');
        assert.match(
          err.message,
          /^timed out after 0\.3s waiting for InstallPlan devops to be Installed; last seen: state 'Installing' \(check \d+\)$/,
        );
        assert.equal(err.last, `state 'Installing' (check ${n})`, 'the state of the very last check');
        assert.equal(err.hint, 'check the install job');
        return true;
      },
    );
    assert.ok(n >= 2, 'it kept checking until the bound');
  });

  it('stops at once when its signal aborts, and passes on errors of the check', async () => {
    const abort = new AbortController();
    const r = recorder(abort.signal);
    setTimeout(() => {
      abort.abort(new Error('operator abort'));
    }, 100);
    await assert.rejects(
      waitFor({ what: 'forever', timeoutMs: 3_600_000, check: () => Promise.resolve(notYet('no')) }, r),
      /operator abort/,
    );
    await assert.rejects(
      waitFor({ what: 'x', timeoutMs: 1000, check: () => Promise.reject(new Error('API down')) }),
      /API down/,
    );
  });

  it('formats bounds the way people read them', () => {
    assert.deepEqual(
      [300, 9_949, 45_000, 60_000, 90_000, 20 * 60_000, 3 * 3_600_000, 7_500_000].map(formatDuration),
      ['0.3s', '9.9s', '45s', '1m', '1m30s', '20m', '3h', '2h5m'],
    );
  });
});
