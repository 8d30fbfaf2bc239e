// The linter (npm run lint; npm test runs it too): typescript-eslint with the type checker, so that
// a promise nobody awaits or handles (no-floating-promises) and a promise where a plain value is
// expected (no-misused-promises) are errors. Formatting is Prettier's job (.prettierrc.json), not
// this file's.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      'src/gen/**',
      'test-output/**',
      'bench/results/**',
      'src/gateway/admin/ui/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      // Unused names are the compiler's to find; a leading _ marks one kept on purpose.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      // An async function with no await is how a synchronous store meets an async port (SagaLog)
      // and how a Fastify handler answers: it is not a mistake here.
      '@typescript-eslint/require-await': 'off',
      // A timer declared before the closures that clear it, and set after them, stays a let.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },
  {
    // Tests: node:test's test() and describe() return promises the runner awaits itself, and
    // answers are read as JSON (any) on purpose: the assertions are the type check.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            {
              from: 'package',
              package: 'node:test',
              name: ['test', 'it', 'describe', 'suite', 'before', 'after', 'beforeEach', 'afterEach'],
            },
          ],
        },
      ],
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    // The chaos runner and the nemesis read the system's JSON answers (json-client's body: any)
    // loosely, like the tests: what they read is judged by the invariants they check.
    files: ['src/chaos/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
    },
  },
  {
    // Plain JavaScript (scripts, the bin, the bench's helpers): no type information to ask.
    files: ['**/*.mjs', '**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      globals: Object.fromEntries(
        [
          'process',
          'console',
          'URL',
          'setTimeout',
          'clearTimeout',
          'setInterval',
          'clearInterval',
          'performance',
          'Buffer',
          'fetch',
        ].map((g) => [g, 'readonly']),
      ),
    },
  },
);
