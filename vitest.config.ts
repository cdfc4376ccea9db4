import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'test/**/*.test.tsx'],
    globalSetup: ['test/setup/build-cli.ts'],
    // ONNX sessions and SQLite files are real: give them room on a shared 2-core machine
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
