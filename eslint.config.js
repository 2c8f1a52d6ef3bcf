// @ts-check
import { builtinModules } from 'node:module';
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

// Workflow code runs in Temporal's deterministic sandbox: Node built-ins fail the bundle (or worse,
// break determinism), and a value import of an activity drags its I/O into the sandbox.
const nodeBuiltins = builtinModules.filter((m) => !m.startsWith('_'));
const sandboxRestrictions = {
  paths: nodeBuiltins.flatMap((name) => [
    { name, message: 'Workflow code runs in the Temporal sandbox: move I/O into an activity.' },
    {
      name: `node:${name}`,
      message: 'Workflow code runs in the Temporal sandbox: move I/O into an activity.',
    },
  ]),
  patterns: [
    {
      group: ['**/activities', '**/activities/*', '**/activities/**'],
      allowTypeImports: true,
      message: 'Import activities with `import type` only; call them through proxyActivities.',
    },
    {
      group: ['@temporalio/activity', '@temporalio/client', '@temporalio/worker', '@temporalio/testing'],
      message: 'Only @temporalio/workflow (and @temporalio/common) may be used inside workflows/.',
    },
  ],
};

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', '.dev/', 'test-results/'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      globals: { ...globals.node },
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        // node:test's describe/it return promises the runner itself tracks.
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite'] },
          ],
        },
      ],
      // @kubernetes/client-node models are generated classes with no behaviour or private state;
      // object literals of their shape are how its own docs and examples build requests.
      '@typescript-eslint/no-unsafe-class-instance-assignment': 'off',
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowBoolean: true },
      ],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    files: ['workflows/**/*.ts'],
    languageOptions: { globals: {} },
    rules: { 'no-restricted-imports': ['error', sandboxRestrictions] },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
);
