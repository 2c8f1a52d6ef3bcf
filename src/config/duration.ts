import { DURATION_PATTERN, DurationSyntaxError, parseGoDuration } from '../../workflows/pure/duration.js';
import { ValidationError } from '../errors.js';

// Go's time.ParseDuration / Duration.String, because the config format is the original tool's
// and operators copy values (`30m`, `1h30m`, `300ms`) from its docs and Helm values. The parser is
// the workflow's own (workflows/pure/duration.ts, pure), so config and workflow input agree.

export { DURATION_PATTERN };

const HINT = 'write a number followed by a unit (h, m, s, ms, us, ns), e.g. "30s", "5m", "1h30m", "1.5h"';

/**
 * Parses a Go duration string (`300ms`, `1.5h`, `1h30m`, `-2m`, `0`) into milliseconds, which may be
 * fractional below 1 ms (`1500ns` → 0.0015). Throws a {@link ValidationError} naming the input.
 */
export function parseDuration(text: string): number {
  try {
    return parseGoDuration(text);
  } catch (err) {
    if (err instanceof DurationSyntaxError) throw new ValidationError(err.message, { hint: HINT });
    throw err;
  }
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
