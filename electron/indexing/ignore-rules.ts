// Which paths the walker leaves out: built-in defaults plus .gitignore/.quireignore files, each
// scoped to the directory it sits in, with git's precedence (a deeper file overrides a shallower
// one; within a file the last matching rule wins; nothing inside an ignored directory comes back).
import ignore, { type Ignore } from 'ignore';

/**
 * gitignore-syntax patterns applied from the walk root. A trailing slash means "directories only",
 * so a file called `build` is still indexed. A root .quireignore can re-include any of them (`!dist/`).
 */
export const DEFAULT_IGNORE_PATTERNS: readonly string[] = [
  // hidden files and directories: .git, .venv, .next, .cache, .DS_Store, editor swap files...
  '.*',
  // dependencies and build outputs
  'node_modules/', 'bower_components/', 'jspm_packages/', 'dist/', 'build/', 'out/', 'target/',
  '__pycache__/', 'venv/', 'coverage/', 'htmlcov/', '*.egg-info/', 'Pods/', 'DerivedData/',
  // operating system and editor droppings
  'Thumbs.db', 'desktop.ini', '$RECYCLE.BIN/', 'System Volume Information/', '~$*', '*~', '*.swp', '*.tmp',
];

export const DEFAULT_IGNORE_FILE_NAMES: readonly string[] = ['.gitignore', '.quireignore'];

/**
 * The `ignore` library memoises every path it tests (and its parents). A scope rebuilds its matcher
 * after this many tests so that walking a million files does not keep a million cache entries.
 */
const TESTS_BEFORE_REBUILD = 20_000;

/** The rules of one directory's ignore files (at the root: the defaults, then the root's files). */
export class IgnoreScope {
  private readonly patterns: string;
  private rules: Ignore;
  private testsSinceRebuild = 0;

  /** @param base the directory the rules belong to, relative to the walk root ('' for the root) */
  constructor(
    readonly base: string,
    patterns: readonly string[],
  ) {
    this.patterns = patterns.join('\n');
    this.rules = ignore().add(this.patterns);
  }

  /** 'ignored' / 'unignored' (a `!rule` matched last) / undefined (no rule applies). */
  verdict(relativePath: string, isDirectory: boolean): 'ignored' | 'unignored' | undefined {
    const local = this.base === '' ? relativePath : relativePath.slice(this.base.length + 1);
    if (++this.testsSinceRebuild > TESTS_BEFORE_REBUILD) {
      this.rules = ignore().add(this.patterns);
      this.testsSinceRebuild = 0;
    }
    try {
      const result = this.rules.test(isDirectory ? `${local}/` : local);
      return result.ignored ? 'ignored' : result.unignored ? 'unignored' : undefined;
    } catch {
      return undefined; // a path the library refuses (e.g. odd characters) is simply not ignored
    }
  }

  /** Whether this scope's rules exclude the directory holding `relativePath` (below the scope's own directory). */
  excludesParentOf(relativePath: string): boolean {
    const slash = relativePath.lastIndexOf('/');
    const parent = slash === -1 ? '' : relativePath.slice(0, slash);
    if (parent === this.base || parent.length <= this.base.length) return false;
    return this.verdict(parent, true) === 'ignored';
  }
}

/**
 * Whether the walker should leave out a path whose directory it is walking.
 * @param scopes from the root down; the last scope with an opinion decides
 * @param relativePath '/'-separated path from the walk root
 */
export function isIgnored(scopes: readonly IgnoreScope[], relativePath: string, isDirectory: boolean): boolean {
  for (let i = scopes.length - 1; i >= 0; i--) {
    const verdict = scopes[i].verdict(relativePath, isDirectory);
    if (!verdict) continue;
    // The library also reports a path as ignored when the scope excludes one of its directories.
    // We are only asked about paths in walked directories, so a deeper scope re-included that
    // directory: the inherited verdict no longer holds (this approximation also drops a direct
    // match in that scope, e.g. a root `*.tmp` under a directory that a deeper file re-included).
    if (verdict === 'ignored' && scopes[i].excludesParentOf(relativePath)) continue;
    return verdict === 'ignored';
  }
  return false;
}
