import type { Logger } from './types.js';

type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** How log lines look: one JSON object per line (for log shippers) or `time LEVEL message k=v`. */
export type LogFormat = 'json' | 'text';

/** JSON unless the stream is a terminal: a person reads text, a container's log collector JSON. */
export function defaultLogFormat(
  stream: NodeJS.WritableStream & { isTTY?: boolean } = process.stderr,
): LogFormat {
  return stream.isTTY ? 'text' : 'json';
}

function jsonValue(_key: string, v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Error) return { name: v.name, message: v.message };
  return v;
}

/** One log line (with its newline) in `format`. */
export function formatLogLine(
  format: LogFormat,
  entry: { time: Date; level: string; message: string; fields?: Record<string, unknown> },
): string {
  const level = entry.level.toLowerCase();
  if (format === 'json') {
    try {
      return `${JSON.stringify({ time: entry.time.toISOString(), level, msg: entry.message, ...entry.fields }, jsonValue)}\n`;
    } catch {
      // A cyclic field: the line still goes out, without its fields.
      return `${JSON.stringify({ time: entry.time.toISOString(), level, msg: entry.message })}\n`;
    }
  }
  const kv = entry.fields
    ? Object.entries(entry.fields)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => ` ${k}=${typeof v === 'string' ? v : JSON.stringify(v, jsonValue)}`)
        .join('')
    : '';
  return `${entry.time.toISOString()} ${level.toUpperCase()} ${entry.message}${kv}\n`;
}

/**
 * A line-per-event logger to a stream (stderr by default), as JSON or text (see
 * {@link defaultLogFormat}). Used by the CLI and tests; activities use Temporal's activity logger
 * behind the same interface.
 */
export function createStreamLogger(
  options: {
    level?: Level;
    stream?: NodeJS.WritableStream & { isTTY?: boolean };
    prefix?: string;
    format?: LogFormat;
  } = {},
): Logger {
  const min = ORDER[options.level ?? 'info'];
  const stream = options.stream ?? process.stderr;
  const format = options.format ?? defaultLogFormat(stream);
  const write = (level: Level, message: string, fields?: Record<string, unknown>): void => {
    if (ORDER[level] < min) return;
    stream.write(
      formatLogLine(format, {
        time: new Date(),
        level,
        message: `${options.prefix ?? ''}${message}`,
        ...(fields ? { fields } : {}),
      }),
    );
  };
  return {
    debug: (m, f) => {
      write('debug', m, f);
    },
    info: (m, f) => {
      write('info', m, f);
    },
    warn: (m, f) => {
      write('warn', m, f);
    },
    error: (m, f) => {
      write('error', m, f);
    },
  };
}

/** A logger that keeps every entry in memory (tests assert on what a job logged). */
export function createMemoryLogger(): Logger & {
  entries: { level: Level; message: string; fields?: Record<string, unknown> }[];
} {
  const entries: { level: Level; message: string; fields?: Record<string, unknown> }[] = [];
  const push = (level: Level) => (message: string, fields?: Record<string, unknown>) => {
    entries.push(fields ? { level, message, fields } : { level, message });
  };
  return { entries, debug: push('debug'), info: push('info'), warn: push('warn'), error: push('error') };
}
