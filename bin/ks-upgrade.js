#!/usr/bin/env node
// Runs the compiled CLI when the package has been built (`npm run build`), and the TypeScript
// sources through tsx in a development checkout.
import { existsSync } from 'node:fs';

const compiled = new URL('../dist/src/cli/main.js', import.meta.url);
if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(new URL('../src/cli/main.ts', import.meta.url).href);
}
