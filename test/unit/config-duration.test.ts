import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DURATION_PATTERN, formatDuration, parseDuration } from '../../src/config/index.js';
import { ValidationError } from '../../src/errors.js';

describe('parseDuration (Go syntax)', () => {
  const cases: [string, number][] = [
    ['0', 0],
    ['0s', 0],
    ['300ms', 300],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1.5h', 5_400_000],
    ['1h30m', 5_400_000],
    ['2h45m30.5s', 9_930_500],
    ['1.1s', 1_100],
    ['.5s', 500],
    ['1.s', 1_000],
    ['1us', 0.001],
    ['1µs', 0.001], // U+00B5
    ['1μs', 0.001], // U+03BC
    ['1500ns', 0.0015],
    ['1ns', 0.000001],
    ['1m1ms', 60_001],
    ['+5s', 5_000],
    ['-2m', -120_000],
  ];
  for (const [text, ms] of cases) {
    it(`${text} → ${ms} ms`, () => {
      assert.equal(parseDuration(text), ms);
    });
  }

  const bad: [string, RegExp][] = [
    ['', /invalid duration "": empty/],
    ['-', /invalid duration "-": empty/],
    ['300', /invalid duration "300": missing unit after "300"/],
    ['5 minutes', /invalid duration "5 minutes": unknown unit " minutes"/],
    ['1h 30m', /invalid duration "1h 30m": unknown unit "h "/],
    ['h', /invalid duration "h": expected a number at "h"/],
    ['1x', /invalid duration "1x": unknown unit "x"/],
    ['.s', /invalid duration ".s": expected a number at ".s"/],
    ['1e3s', /invalid duration "1e3s": unknown unit "e"/],
    ['3000000h', /invalid duration "3000000h": out of range/],
  ];
  for (const [text, message] of bad) {
    it(`rejects ${JSON.stringify(text)}, naming it`, () => {
      assert.throws(
        () => parseDuration(text),
        (err: unknown) =>
          err instanceof ValidationError && message.test(err.message) && err.hint !== undefined,
      );
    });
  }
});

describe('formatDuration (Go Duration.String)', () => {
  const cases: [number, string][] = [
    [0, '0s'],
    [0.000001, '1ns'],
    [0.001, '1µs'],
    [0.0015, '1.5µs'],
    [300, '300ms'],
    [1_500, '1.5s'],
    [30_000, '30s'],
    [300_000, '5m0s'],
    [1_800_000, '30m0s'],
    [5_400_000, '1h30m0s'],
    [9_930_500, '2h45m30.5s'],
    [-60_000, '-1m0s'],
  ];
  for (const [ms, text] of cases) {
    it(`${ms} ms → ${text}`, () => {
      assert.equal(formatDuration(ms), text);
      assert.equal(parseDuration(text), ms);
    });
  }
});

describe('DURATION_PATTERN (config.schema.json) agrees with parseDuration', () => {
  const pattern = new RegExp(DURATION_PATTERN, 'u');
  const samples = [
    '0',
    '0s',
    '30s',
    '1h30m',
    '1.5h',
    '.5s',
    '1.s',
    '300ms',
    '1us',
    '1µs',
    '1μs',
    '+5m',
    '2h45m30.5s',
  ];
  const rejected = ['', '00', '300', '5 minutes', '1h 30m', 'h', '1x', '.s', '1e3s', '1.5', 'm5'];
  for (const text of samples) {
    it(`accepts ${JSON.stringify(text)}`, () => {
      assert.ok(pattern.test(text));
      assert.doesNotThrow(() => parseDuration(text));
    });
  }
  for (const text of rejected) {
    it(`rejects ${JSON.stringify(text)}`, () => {
      assert.ok(!pattern.test(text));
      assert.throws(() => parseDuration(text));
    });
  }
});
