import type { Logger } from './types.js';

type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/**
 * A line-per-event logger to a stream (stderr by default): `2026-11-24T09:00:00Z INFO message k=v`.
 * Used by the CLI and tests; activities use Temporal's activity logger behind the same interface.
 */
export function createStreamLogger(
  options: { level?: Level; stream?: NodeJS.WritableStream; prefix?: string } = {},
): Logger {
  const min = ORDER[options.level ?? 'info'];
  const stream = options.stream ?? process.stderr;
  const write = (level: Level, message: string, fields?: Record<string, unknown>): void => {
    if (ORDER[level] < min) return;
    const kv = fields
      ? Object.entries(fields)
          .map(([k, v]) => ` ${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
          .join('')
      : '';
    stream.write(
      `${new Date().toISOString()} ${level.toUpperCase()} ${options.prefix ?? ''}${message}${kv}\n`,
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
