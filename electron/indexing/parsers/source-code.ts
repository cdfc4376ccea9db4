// Source code, configuration, data and logs: text whose structure is lines, not sentences.
// One section per file; the passage cutter splits it at blank lines, then lines.
import { sectionOf } from './sections.ts';
import type { ParsedDocument } from './types.ts';

export const SOURCE_CODE_EXTENSIONS: ReadonlySet<string> = new Set([
  // programming languages
  'ts', 'tsx', 'mts', 'cts', 'js', 'jsx', 'mjs', 'cjs', 'py', 'pyi', 'rb', 'rs', 'go', 'java', 'kt', 'kts',
  'scala', 'groovy', 'c', 'h', 'cc', 'cpp', 'cxx', 'hh', 'hpp', 'hxx', 'm', 'mm', 'cs', 'fs', 'swift',
  'php', 'pl', 'pm', 'lua', 'r', 'jl', 'dart', 'ex', 'exs', 'erl', 'hs', 'ml', 'mli', 'clj', 'cljs',
  'elm', 'zig', 'nim', 'v', 'sv', 'vhd', 'vue', 'svelte', 'astro', 'sol', 'proto', 'graphql', 'gql',
  // shells and build scripts
  'sh', 'bash', 'zsh', 'fish', 'ps1', 'psm1', 'bat', 'cmd', 'mk', 'cmake', 'gradle', 'nix',
  // styles and templates
  'css', 'scss', 'sass', 'less', 'styl',
  // data and configuration
  'json', 'jsonc', 'json5', 'ndjson', 'jsonl', 'yaml', 'yml', 'toml', 'ini', 'cfg', 'conf', 'properties',
  'env', 'xml', 'xsd', 'xsl', 'plist', 'csv', 'tsv', 'sql', 'tf', 'hcl', 'lock', 'diff', 'patch', 'log',
  'ipynb',
]);

/** Well-known extensionless (or dotted) file names that are code. */
export const SOURCE_CODE_FILE_NAMES: ReadonlySet<string> = new Set([
  'makefile', 'gnumakefile', 'dockerfile', 'containerfile', 'jenkinsfile', 'vagrantfile', 'gemfile',
  'rakefile', 'procfile', 'cmakelists.txt', 'justfile', 'brewfile',
]);

export function parseSourceCode(text: string, fileName: string): ParsedDocument {
  const section = sectionOf(text, 0, text.length);
  return { title: fileName, parser: 'code', textKind: 'lines', text, sections: section ? [section] : [] };
}
