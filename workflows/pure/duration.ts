// Go's time.ParseDuration, as a pure module: the workflow reads its timeouts with it and the config
// loader (src/config/duration.ts) wraps it with its own error type, so both read `1h30m` the same
// way. Arithmetic is done in integer nanoseconds (BigInt) so that `1.1s` is exactly 1100 ms.

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
 * The syntax {@link parseGoDuration} accepts, without a sign, as a JSON Schema `pattern`.
 * Used by config.schema.json; a unit test keeps it in step with the parser.
 */
export const DURATION_PATTERN = '^\\+?(0|(([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$';

/** A text that is not a Go duration; `why` says what is wrong with it. */
export class DurationSyntaxError extends Error {
  constructor(
    readonly text: string,
    readonly why: string,
  ) {
    super(`invalid duration ${JSON.stringify(text)}: ${why}`);
    this.name = 'DurationSyntaxError';
  }
}

/**
 * Parses a Go duration string (`300ms`, `1.5h`, `1h30m`, `-2m`, `0`) into milliseconds, which may be
 * fractional below 1 ms (`1500ns` → 0.0015). Throws a {@link DurationSyntaxError} naming the input.
 */
export function parseGoDuration(text: string): number {
  let s = text;
  let negative = false;
  if (s.startsWith('-') || s.startsWith('+')) {
    negative = s.startsWith('-');
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') throw new DurationSyntaxError(text, 'empty');
  let total = 0n;
  while (s !== '') {
    const number = /^([0-9]*)(\.([0-9]*))?/.exec(s);
    const whole = number?.[1] ?? '';
    const fraction = number?.[3];
    if (whole === '' && (fraction === undefined || fraction === '')) {
      throw new DurationSyntaxError(text, `expected a number at ${JSON.stringify(s)}`);
    }
    s = s.slice(number?.[0].length ?? 0);
    const unitText = /^[^0-9.]*/.exec(s)?.[0] ?? '';
    if (unitText === '') {
      throw new DurationSyntaxError(text, `missing unit after ${JSON.stringify(number?.[0] ?? '')}`);
    }
    const unit = NS_PER_UNIT[unitText];
    if (unit === undefined) throw new DurationSyntaxError(text, `unknown unit ${JSON.stringify(unitText)}`);
    s = s.slice(unitText.length);
    let part = BigInt(whole === '' ? '0' : whole) * unit;
    if (fraction !== undefined && fraction !== '') {
      // Truncates below 1 ns, as Go does.
      part += (BigInt(fraction) * unit) / 10n ** BigInt(fraction.length);
    }
    total += part;
    if (total > MAX_NS) throw new DurationSyntaxError(text, 'out of range (more than about 292 years)');
  }
  const ms = Number(total / NS_PER_MS) + Number(total % NS_PER_MS) / 1e6;
  return negative ? -ms : ms;
}
