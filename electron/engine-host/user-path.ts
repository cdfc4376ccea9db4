// A folder path the user typed (Library, model folder): a full path, or ~ for their home. A relative
// path is refused rather than resolved against the engine's working directory, which the user never
// chose and cannot see (the app's, or wherever `quire serve` was started).
import os from 'node:os';
import path from 'node:path';
import { QuireRequestError } from '../contract/types.ts';

export function userPath(typed: string): string {
  const trimmed = typed.trim();
  const expanded = trimmed === '~' || /^~[\\/]/.test(trimmed) ? path.join(os.homedir(), trimmed.slice(1)) : trimmed;
  if (!path.isAbsolute(expanded)) {
    throw new QuireRequestError('invalid-arguments', `type a full path: "${trimmed}" is relative (for example ${path.join(os.homedir(), 'Documents')})`);
  }
  return path.resolve(expanded);
}
