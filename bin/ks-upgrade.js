#!/usr/bin/env node
// Runs the compiled CLI (dist/, written by `npm run build`: on `npm install` in a clone through
// `prepare`, and shipped in the npm package). A clone whose sources are newer than dist/ runs the
// TypeScript sources through tsx instead, so an edit is never hidden by a stale build; so does a
// TypeScript plugin (--plugin x.ts, KS_UPGRADE_PLUGINS), which must share the modules it imports
// from src/, and KS_UPGRADE_FROM_SOURCE=1.
import { existsSync, readdirSync, statSync } from 'node:fs';

const root = new URL('../', import.meta.url);
const compiled = new URL('dist/src/cli/main.js', root);
// Written last by `npm run build`: its mtime is when the build finished.
const stamp = new URL('dist/workflow-bundle.js', root);
// What tsconfig.build.json compiles (and what the bundle is made of).
const INPUTS = ['src', 'workflows', 'activities', 'tsconfig.json', 'tsconfig.build.json'];

function newestInput() {
  let newest = 0;
  for (const input of INPUTS) {
    const p = new URL(input, root);
    if (!existsSync(p)) continue;
    const st = statSync(p);
    if (!st.isDirectory()) newest = Math.max(newest, st.mtimeMs);
    else {
      for (const f of readdirSync(p, { recursive: true, withFileTypes: true })) {
        if (f.isFile()) newest = Math.max(newest, statSync(`${f.parentPath ?? f.path}/${f.name}`).mtimeMs);
      }
    }
  }
  return newest;
}

function typescriptPlugin() {
  const args = process.argv.slice(2);
  const plugins = (process.env.KS_UPGRADE_PLUGINS ?? '').split(/[,:]/);
  args.forEach((a, i) => {
    if (a === '--plugin') plugins.push(args[i + 1] ?? '');
    else if (a.startsWith('--plugin=')) plugins.push(a.slice('--plugin='.length));
  });
  return plugins.some((p) => /\.[cm]?tsx?$/.test(p.trim()));
}

function useCompiled() {
  if (!existsSync(compiled)) return false;
  // An installed package ships no sources: dist/ is all there is.
  if (!existsSync(new URL('src', root))) return true;
  if (process.env.KS_UPGRADE_FROM_SOURCE === '1' || typescriptPlugin()) return false;
  return existsSync(stamp) && statSync(stamp).mtimeMs >= newestInput();
}

if (useCompiled()) {
  await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(new URL('src/cli/main.ts', root).href);
}
