// Plugins: extra jobs from ES modules, loaded by the CLI and the worker before they plan.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ValidationError } from '../errors.js';
import type { JobRegistry } from './registry.js';
import type { JobFactory } from './types.js';

function isFactory(v: unknown): v is JobFactory {
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof (v as JobFactory).name === 'string' &&
    typeof (v as JobFactory).create === 'function'
  );
}

/**
 * Loads each module (a path or package name) and registers the job factories it exports: either
 * `export const jobs: JobFactory[]`, or `export function register(registry)`.
 */
export async function loadPlugins(modules: readonly string[], registry: JobRegistry): Promise<string[]> {
  const loaded: string[] = [];
  for (const spec of modules) {
    const url = spec.startsWith('.') || path.isAbsolute(spec) ? pathToFileURL(path.resolve(spec)).href : spec;
    let mod: { jobs?: unknown; register?: unknown };
    try {
      mod = (await import(url)) as typeof mod;
    } catch (err) {
      throw new ValidationError(
        `cannot load plugin ${spec}: ${err instanceof Error ? err.message : String(err)}`,
        {
          hint: 'pass the path of an ES module that exports `jobs` (JobFactory[]) or `register(registry)`',
        },
      );
    }
    if (typeof mod.register === 'function') {
      (mod.register as (r: JobRegistry) => void)(registry);
    } else if (Array.isArray(mod.jobs) && mod.jobs.every(isFactory)) {
      for (const f of mod.jobs) registry.register(f);
    } else {
      throw new ValidationError(`plugin ${spec} exports neither \`jobs\` nor \`register\``, {
        hint: 'export const jobs: JobFactory[] = [...]  (see docs/writing-a-job.md)',
      });
    }
    loaded.push(spec);
  }
  return loaded;
}

/** Plugin modules named in `KS_UPGRADE_PLUGINS` (comma-separated). */
export function pluginsFromEnv(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env.KS_UPGRADE_PLUGINS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}
