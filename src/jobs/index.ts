export * from './context.js';
export * from './logger.js';
export * from './registry.js';
export * from './runner.js';
export * from './types.js';
export * from './original.js';
export * from './builtin.js';
export * from './plugins.js';
