import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // one test file at a time: the kernel-facing files measure timing (linger waits, ISN races,
    // TIME_WAIT countdowns) that two cores shared by parallel files would distort
    fileParallelism: false,
  },
});
