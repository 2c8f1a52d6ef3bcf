import { KsUpgradeError } from '../errors.js';
import type { JobFactory } from './types.js';

/** A second factory under a name that is already taken. */
export class DuplicateJobError extends KsUpgradeError {}

/**
 * A set of job factories. The process-wide {@link defaultRegistry} holds the built-in jobs; tests
 * and plugin authors may build their own.
 */
export class JobRegistry {
  private readonly factories = new Map<string, JobFactory>();

  /** Registers a factory; a name registered twice is an error (as in the original). */
  register(factory: JobFactory): void {
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(factory.name)) {
      throw new KsUpgradeError(`job name '${factory.name}' is not a lowercase DNS label`, {
        hint: 'use lowercase letters, digits and dashes: it is a config key and a store folder',
      });
    }
    if (this.factories.has(factory.name)) {
      throw new DuplicateJobError(`job factory is already registered: ${factory.name}`);
    }
    this.factories.set(factory.name, factory);
  }

  get(name: string): JobFactory | undefined {
    return this.factories.get(name);
  }

  /** Registered names, sorted. */
  names(): string[] {
    return [...this.factories.keys()].sort();
  }
}

/** The registry the CLI, worker and activities use. */
export const defaultRegistry = new JobRegistry();

/** Registers a job in the {@link defaultRegistry}. */
export function registerJob(factory: JobFactory): void {
  defaultRegistry.register(factory);
}
