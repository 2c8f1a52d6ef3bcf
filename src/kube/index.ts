export * from './client.js';
export * from './connect.js';
export * from './crd.js';
export * from './errors.js';
export * from './transport.js';
export * from './types.js';
export * from './discovery.js';
