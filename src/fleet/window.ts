// Maintenance windows: when the next occurrence of a window opens and closes, in its time zone.
// Runs in the worker (an activity) and in the CLI, never in workflow code: the time-zone database
// belongs to the Node runtime, and an activity's answer is recorded in history, so a replay on a
// worker with other time-zone data still takes the same decisions.
import { WEEKDAYS, type MaintenanceWindow, type Weekday } from './input.js';

/** An occurrence of a window, epoch milliseconds. */
export interface WindowOccurrence {
  opensAt: number;
  closesAt: number;
}

const DAY_MS = 86_400_000;
const CLOCK = /^([01]\d|2[0-4]):([0-5]\d)(?::([0-5]\d))?$/;

/** Seconds since midnight of `HH:MM[:SS]` (`24:00` is the end of the day); undefined when invalid. */
export function parseClock(text: string): number | undefined {
  const m = CLOCK.exec(text);
  if (!m) return undefined;
  const seconds = Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3] ?? 0);
  return seconds > 86_400 ? undefined : seconds;
}

/** True when the runtime knows the IANA time zone. */
export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** Wall-clock time of `t` in `tz`, read as if it were UTC, minus `t`: the zone's offset at `t`. */
function offsetAt(t: number, tz: string): number {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formatters.set(tz, f);
  }
  const parts: Record<string, number> = {};
  for (const p of f.formatToParts(new Date(t))) if (p.type !== 'literal') parts[p.type] = Number(p.value);
  const wall = Date.UTC(
    parts.year ?? 1970,
    (parts.month ?? 1) - 1,
    parts.day ?? 1,
    parts.hour ?? 0,
    parts.minute ?? 0,
    parts.second ?? 0,
  );
  return wall - Math.floor(t / 1000) * 1000;
}

/**
 * The instant of local `y-m-d` + `seconds` in `tz`: the earlier one when the wall-clock time occurs
 * twice (clocks going back), shifted by the jump when it does not occur (clocks going forward).
 */
function zonedInstant(y: number, m: number, d: number, seconds: number, tz: string): number {
  const wall = Date.UTC(y, m, d) + seconds * 1000;
  const candidates = [wall - offsetAt(wall - 12 * 3_600_000, tz), wall - offsetAt(wall + 12 * 3_600_000, tz)];
  const exact = candidates.filter((t) => t + offsetAt(t, tz) === wall);
  return exact.length > 0 ? Math.min(...exact) : Math.max(...candidates);
}

/** The local calendar date of `t` in `tz`. */
function localDate(t: number, tz: string): { y: number; m: number; d: number } {
  const local = new Date(t + offsetAt(t, tz));
  return { y: local.getUTCFullYear(), m: local.getUTCMonth(), d: local.getUTCDate() };
}

/**
 * The occurrence of the window that is open at `from`, or the next one; null when it never opens
 * again (no day, an empty span, or past `notAfter`). Scans eight days ahead, which covers every
 * weekly pattern.
 */
export function nextOccurrence(w: MaintenanceWindow, from: number): WindowOccurrence | null {
  const start = parseClock(w.start);
  const end = parseClock(w.end);
  if (start === undefined || end === undefined || start === 86_400) return null;
  const days = new Set<Weekday>(w.days ?? WEEKDAYS);
  if (days.size === 0) return null;
  // An end at or before the start ends the next day; equal start and end is an empty window
  // unless written 00:00–24:00.
  if (start === end) return null;
  const notBefore = w.notBefore ? Date.parse(w.notBefore) : -Infinity;
  const notAfter = w.notAfter ? Date.parse(w.notAfter) : Infinity;
  const lower = Math.max(from, notBefore);
  if (!(lower < notAfter)) return null;
  const first = localDate(lower - DAY_MS, w.timeZone);
  for (let i = 0; i < 10; i++) {
    const date = new Date(Date.UTC(first.y, first.m, first.d + i));
    const weekday = WEEKDAYS[date.getUTCDay()];
    if (weekday === undefined || !days.has(weekday)) continue;
    const y = date.getUTCFullYear();
    const m = date.getUTCMonth();
    const d = date.getUTCDate();
    const opensAt = zonedInstant(y, m, d, start, w.timeZone);
    const closesAt =
      end > start ? zonedInstant(y, m, d, end, w.timeZone) : zonedInstant(y, m, d + 1, end, w.timeZone);
    if (opensAt >= notAfter) return null;
    const occurrence = { opensAt: Math.max(opensAt, notBefore), closesAt: Math.min(closesAt, notAfter) };
    if (occurrence.closesAt > lower && occurrence.opensAt < occurrence.closesAt) return occurrence;
  }
  return null;
}

/** Local `Sat 2025-06-07 01:00:00` of an instant in `tz`. */
export function localTime(t: number, tz: string): string {
  const parts: Record<string, string> = {};
  const f = new Intl.DateTimeFormat('en-US', {
    timeZone: tz,
    hourCycle: 'h23',
    weekday: 'short',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  });
  for (const p of f.formatToParts(new Date(t))) parts[p.type] = p.value;
  return `${parts.weekday ?? ''} ${parts.year ?? ''}-${parts.month ?? ''}-${parts.day ?? ''} ${parts.hour ?? ''}:${parts.minute ?? ''}:${parts.second ?? ''}`;
}

/** `Sat 2025-06-07 01:00:00 – Sat 2025-06-07 05:00:00 Europe/Berlin` for messages and `fleet plan`. */
export function describeOccurrence(o: WindowOccurrence, tz: string): string {
  return `${localTime(o.opensAt, tz)} – ${localTime(o.closesAt, tz)} ${tz}`;
}
