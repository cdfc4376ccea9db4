// The command line's usage error: a bad or missing argument (exit code 2, with the usage line).
// Option values are parsed and checked in options.ts.

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
