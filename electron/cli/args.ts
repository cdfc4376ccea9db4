// Small helpers for the CLI's typed options: numbers are checked, not coerced silently.

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export function numberOption(value: string | undefined, name: string, check: (n: number) => boolean = () => true): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || !check(n)) throw new UsageError(`--${name}: invalid value "${value}"`);
  return n;
}

export function choiceOption<T extends string>(value: string | undefined, name: string, choices: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!choices.includes(value as T)) throw new UsageError(`--${name} must be one of ${choices.join(', ')} (got "${value}")`);
  return value as T;
}
