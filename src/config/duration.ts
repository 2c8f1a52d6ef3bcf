import { ValidationError } from '../errors.js';

// Go's time.ParseDuration / Duration.String, because the config format is the original tool's
// and operators copy values (`30m`, `1h30m`, `300ms`) from its docs and Helm values.
// Arithmetic is done in integer nanoseconds (BigInt) so that `1.1s` is exactly 1100 ms.

const NS_PER_UNIT: Readonly<Record<string, bigint>> = {
  ns: 1n,
  us: 1_000n,
  µs: 1_000n, // U+00B5 MICRO SIGN
  μs: 1_000n, // U+03BC GREEK SMALL LETTER MU
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};

const MAX_NS = 2n ** 63n - 1n; // Go's time.Duration is an int64 of nanoseconds
const NS_PER_MS = 1_000_000n;

/**
 * The syntax {@link parseDuration} accepts, without a sign, as a JSON Schema `pattern`.
 * Used by config.schema.json; a unit test keeps it in step with the parser.
 */
export const DURATION_PATTERN = '^\\+?(0|(([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$';

const HINT = 'write a number followed by a unit (h, m, s, ms, us, ns), e.g. "30s", "5m", "1h30m", "1.5h"';

function invalid(text: string, why: string): ValidationError {
  return new ValidationError(`invalid duration ${JSON.stringify(text)}: ${why}`, { hint: HINT });
}

/**
 * Parses a Go duration string (`300ms`, `1.5h`, `1h30m`, `-2m`, `0`) into milliseconds, which may be
 * fractional below 1 ms (`1500ns` → 0.0015). Throws a {@link ValidationError} naming the input.
 */
export function parseDuration(text: string): number {
  let s = text;
  let negative = false;
  if (s.startsWith('-') || s.startsWith('+')) {
    negative = s.startsWith('-');
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') throw invalid(text, 'empty');
  let total = 0n;
  while (s !== '') {
    const number = /^([0-9]*)(\.([0-9]*))?/.exec(s);
    const whole = number?.[1] ?? '';
    const fraction = number?.[3];
    if (whole === '' && (fraction === undefined || fraction === '')) {
      throw invalid(text, `expected a number at ${JSON.stringify(s)}`);
    }
    s = s.slice(number?.[0].length ?? 0);
    const unitText = /^[^0-9.]*/.exec(s)?.[0] ?? '';
    if (unitText === '') {
      throw invalid(text, `missing unit after ${JSON.stringify(number?.[0] ?? '')}`);
    }
    const unit = NS_PER_UNIT[unitText];
    if (unit === undefined) {
      throw invalid(text, `unknown unit ${JSON.stringify(unitText)}`);
    }
    s = s.slice(unitText.length);
    let part = BigInt(whole === '' ? '0' : whole) * unit;
    if (fraction !== undefined && fraction !== '') {
      // Truncates below 1 ns, as Go does.
      part += (BigInt(fraction) * unit) / 10n ** BigInt(fraction.length);
    }
    total += part;
    if (total > MAX_NS) throw invalid(text, 'out of range (more than about 292 years)');
  }
  const ms = Number(total / NS_PER_MS) + Number(total % NS_PER_MS) / 1e6;
  return negative ? -ms : ms;
}

/**
 * Formats milliseconds the way Go's `Duration.String()` does: `1h30m0s`, `5m0s`, `1.5s`, `300ms`,
 * `0s`. Sub-nanosecond parts are rounded away. `parseDuration(formatDuration(x)) === x` for whole ns.
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) throw new RangeError(`cannot format a non-finite duration: ${ms}`);
  // Whole and fractional milliseconds apart: ms * 1e6 beyond 2^53 (about 104 days) would round
  // away nanoseconds the double still holds, and the text would not parse back to the same value.
  const whole = Math.trunc(ms);
  const nsTotal = BigInt(whole) * 1_000_000n + BigInt(Math.round((ms - whole) * 1e6));
  if (nsTotal === 0n) return '0s';
  const negative = nsTotal < 0n;
  const u = negative ? -nsTotal : nsTotal;
  let out: string;
  if (u < 1_000n) out = `${u}ns`;
  else if (u < 1_000_000n) out = `${fixed(u, 3)}µs`;
  else if (u < 1_000_000_000n) out = `${fixed(u, 6)}ms`;
  else {
    const seconds = u / 1_000_000_000n;
    const frac = u % 1_000_000_000n;
    out = `${seconds % 60n}${fraction(frac, 9)}s`;
    const minutes = seconds / 60n;
    if (minutes > 0n) {
      out = `${minutes % 60n}m${out}`;
      const hours = minutes / 60n;
      if (hours > 0n) out = `${hours}h${out}`;
    }
  }
  return negative ? `-${out}` : out;
}

/** `value / 10^digits` with the fraction's trailing zeros (and a bare dot) removed. */
function fixed(value: bigint, digits: number): string {
  const scale = 10n ** BigInt(digits);
  return `${value / scale}${fraction(value % scale, digits)}`;
}

function fraction(rest: bigint, digits: number): string {
  if (rest === 0n) return '';
  return `.${rest.toString().padStart(digits, '0').replace(/0+$/, '')}`;
}
