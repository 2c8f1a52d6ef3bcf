// @ts-check
import path from 'node:path';
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

// Workflow code runs in Temporal's deterministic sandbox and is replayed by every future worker
// build: it may value-import only the two workflow-safe SDK packages and files inside workflows/
// (small pure modules written for it). Anything else, even pure-looking code in src/, can change
// under running workflows without anyone thinking of replay. Types may come from anywhere.
const WORKFLOWS_DIR = path.join(import.meta.dirname, 'workflows');
const WORKFLOW_PACKAGES = new Set(['@temporalio/workflow', '@temporalio/common']);

/** @type {import('eslint').Rule.RuleModule} */
const workflowImports = {
  meta: {
    type: 'problem',
    docs: { description: 'workflows/ imports only workflow-safe modules (allow-list)' },
    schema: [],
    messages: {
      denied:
        "workflows/ may import values only from @temporalio/workflow, @temporalio/common and files inside workflows/; '{{source}}' is none of them. Use `import type`, or move a small pure module into workflows/pure/ (docs/workflow-changes.md).",
    },
  },
  create(context) {
    const allowed = (source) => {
      if (WORKFLOW_PACKAGES.has(source)) return true;
      if (!source.startsWith('.')) return false;
      const target = path.resolve(path.dirname(context.filename), source);
      return target.startsWith(WORKFLOWS_DIR + path.sep);
    };
    const typeOnly = (node) =>
      node.importKind === 'type' ||
      node.exportKind === 'type' ||
      (node.specifiers?.length > 0 &&
        node.specifiers.every((s) => s.importKind === 'type' || s.exportKind === 'type'));
    const check = (node, sourceNode) => {
      if (sourceNode?.type !== 'Literal' || typeof sourceNode.value !== 'string') return;
      if (!typeOnly(node) && !allowed(sourceNode.value)) {
        context.report({ node: sourceNode, messageId: 'denied', data: { source: sourceNode.value } });
      }
    };
    return {
      ImportDeclaration: (node) => check(node, node.source),
      ExportNamedDeclaration: (node) => check(node, node.source),
      ExportAllDeclaration: (node) => check(node, node.source),
      ImportExpression: (node) => check(node, node.source),
    };
  },
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
    plugins: { 'ks-upgrade': { rules: { 'workflow-imports': workflowImports } } },
    rules: { 'ks-upgrade/workflow-imports': 'error' },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
);
