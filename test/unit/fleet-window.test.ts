// Maintenance windows: occurrences in their time zone, across midnight and DST changes, bounded by
// notBefore/notAfter; and "never opens" as null.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeOccurrence, nextOccurrence, parseClock } from '../../src/fleet/window.js';

const t = (iso: string): number => Date.parse(iso);
const iso = (o: { opensAt: number; closesAt: number } | null): [string, string] | null =>
  o ? [new Date(o.opensAt).toISOString(), new Date(o.closesAt).toISOString()] : null;

describe('maintenance windows', () => {
  it('parses clock times, 24:00 included', () => {
    assert.equal(parseClock('01:30'), 5400);
    assert.equal(parseClock('23:59:59'), 86399);
    assert.equal(parseClock('24:00'), 86400);
    assert.equal(parseClock('24:01'), undefined);
    assert.equal(parseClock('1:30'), undefined);
  });

  it('finds the next weekend night in Berlin (summer time, UTC+2)', () => {
    const w = {
      timeZone: 'Europe/Berlin',
      days: ['sat' as const, 'sun' as const],
      start: '01:00',
      end: '05:00',
    };
    // Wednesday 2025-06-04 12:00 UTC → Saturday 01:00 Berlin = Friday 23:00 UTC.
    assert.deepEqual(iso(nextOccurrence(w, t('2025-06-04T12:00:00Z'))), [
      '2025-06-06T23:00:00.000Z',
      '2025-06-07T03:00:00.000Z',
    ]);
    // Inside the window: that occurrence, already open.
    assert.deepEqual(iso(nextOccurrence(w, t('2025-06-07T01:00:00Z'))), [
      '2025-06-06T23:00:00.000Z',
      '2025-06-07T03:00:00.000Z',
    ]);
    // Right at its close: the Sunday one.
    assert.deepEqual(iso(nextOccurrence(w, t('2025-06-07T03:00:00Z'))), [
      '2025-06-07T23:00:00.000Z',
      '2025-06-08T03:00:00.000Z',
    ]);
  });

  it('follows the DST change: the same wall-clock hours, a different UTC offset', () => {
    const w = { timeZone: 'Europe/Berlin', start: '01:00', end: '05:00' };
    // 2025-10-26: clocks go back at 03:00 CEST → 02:00 CET; the window lasts 5 real hours.
    assert.deepEqual(iso(nextOccurrence(w, t('2025-10-25T12:00:00Z'))), [
      '2025-10-25T23:00:00.000Z',
      '2025-10-26T04:00:00.000Z',
    ]);
    // The next night is in winter time (UTC+1).
    assert.deepEqual(iso(nextOccurrence(w, t('2025-10-26T12:00:00Z'))), [
      '2025-10-27T00:00:00.000Z',
      '2025-10-27T04:00:00.000Z',
    ]);
  });

  it('crosses midnight when end is not after start, and 00:00–24:00 is all day', () => {
    const night = { timeZone: 'Asia/Shanghai', start: '23:00', end: '02:00' };
    assert.deepEqual(iso(nextOccurrence(night, t('2025-06-01T00:00:00Z'))), [
      '2025-06-01T15:00:00.000Z',
      '2025-06-01T18:00:00.000Z',
    ]);
    const allDay = { timeZone: 'UTC', days: ['mon' as const], start: '00:00', end: '24:00' };
    assert.deepEqual(iso(nextOccurrence(allDay, t('2025-06-01T10:00:00Z'))), [
      '2025-06-02T00:00:00.000Z',
      '2025-06-03T00:00:00.000Z',
    ]);
  });

  it('is bounded by notBefore and notAfter, and never opens when nothing is left', () => {
    const w = {
      timeZone: 'UTC',
      start: '10:00',
      end: '12:00',
      notBefore: '2025-06-03T11:00:00Z',
      notAfter: '2025-06-04T11:30:00Z',
    };
    assert.deepEqual(iso(nextOccurrence(w, t('2025-06-01T00:00:00Z'))), [
      '2025-06-03T11:00:00.000Z',
      '2025-06-03T12:00:00.000Z',
    ]);
    assert.deepEqual(iso(nextOccurrence(w, t('2025-06-03T12:00:00Z'))), [
      '2025-06-04T10:00:00.000Z',
      '2025-06-04T11:30:00.000Z',
    ]);
    assert.equal(nextOccurrence(w, t('2025-06-04T11:30:00Z')), null);
    assert.equal(nextOccurrence({ timeZone: 'UTC', start: '02:00', end: '02:00' }, 0), null);
    assert.equal(nextOccurrence({ timeZone: 'UTC', days: [], start: '01:00', end: '02:00' }, 0), null);
  });

  it('windows down to the second (short windows in tests)', () => {
    const w = { timeZone: 'UTC', start: '10:00:30', end: '10:01:00' };
    assert.deepEqual(iso(nextOccurrence(w, t('2025-06-01T10:00:00Z'))), [
      '2025-06-01T10:00:30.000Z',
      '2025-06-01T10:01:00.000Z',
    ]);
    assert.match(
      describeOccurrence({ opensAt: t('2025-06-01T10:00:30Z'), closesAt: t('2025-06-01T10:01:00Z') }, 'UTC'),
      /^Sun 2025-06-01 10:00:30 – Sun 2025-06-01 10:01:00 UTC$/,
    );
  });
});
