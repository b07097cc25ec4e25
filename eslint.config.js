// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  {
    ignores: [
      'node_modules',
      'src/atlas/generated',
      'src/graphql/generated',
      'examples/typed-client/gql',
      'bench/results',
      'build',
      'coverage',
      'reports',
      '.stryker-tmp',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    // Every simulator answer in the suite is checked against the Atlas spec: tests start the
    // simulator through test/support/contract.ts only (a violation fails the test that caused it).
    files: ['test/**/*.ts'],
    ignores: ['test/support/contract.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/src/simulator/index.js', '**/src/simulator/server.js'],
              importNames: ['startSimulator'],
              message:
                'Start simulators with startContractSimulator (test/support/contract.ts): it checks every answer against the Atlas spec.',
            },
          ],
        },
      ],
    },
  },
);
