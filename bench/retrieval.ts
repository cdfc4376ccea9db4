// npm run bench:retrieval — retrieval quality on a real documentation tree: a labelled set of
// questions worded as a user would (not in the docs' own words), each with the page(s) that answer
// it; recall@5, recall@10 and MRR at document level (bench/retrieval-metrics.ts) per retriever.
//
//   npx tsx bench/retrieval.ts [--retriever NAME]... [--set FILE] [--docs DIR] [--db PATH]
//                              [--split dev|test|all] [--param NAME=VALUE]... [--misses] [--json]
//
// The tree: Debian's python3-doc (bench/python-docs.ts), indexed as `quire index` does without a
// model (estimated token counts). --db keeps the index in PATH for later runs (re-indexing an
// unchanged tree takes a fraction of a second); without it a temporary database is used.
// The set (bench/retrieval-python-doc.jsonl): one JSON object a line, {id, split, question,
// relevant: [paths relative to the tree, .html], evidence}. A page counts when either its HTML file
// or its reST source (_sources/X.rst.txt, the same text) is hit. `split` is 'dev' (the half the
// ranking was tuned on) or 'test' (held out), so tuning gains can be checked on unseen questions.
// --param overrides one of the ranking's tuned defaults (SearchTuning in db/search.ts: textWeight,
// titleWeight, perDocument, prefixMinLength, dropStopWords) for the retrievers that take them.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { openDatabase } from '../db/open.ts';
import { indexFolder } from '../electron/indexing/indexer.ts';
import { estimateTokens } from '../electron/indexing/token-estimate.ts';
import { ensurePythonDocs } from './python-docs.ts';
import { scoreRetrieval, type QuestionResult, type RetrievalScores } from './retrieval-metrics.ts';
import { RETRIEVERS } from './retrievers.ts';
import { DEFAULT_SEARCH_TUNING, type SearchTuning } from '../db/search.ts';
import { machineLine, median } from './stats.ts';

const { values: args } = parseArgs({
  options: {
    retriever: { type: 'string', multiple: true },
    set: { type: 'string', default: path.join(import.meta.dirname, 'retrieval-python-doc.jsonl') },
    docs: { type: 'string' },
    db: { type: 'string' },
    split: { type: 'string', default: 'all' },
    param: { type: 'string', multiple: true },
    misses: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});

interface LabelledQuestion {
  id: string;
  split: 'dev' | 'test';
  question: string;
  relevant: string[];
}

const K = 10;

function loadSet(file: string, docs: string): LabelledQuestion[] {
  const lines = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim());
  return lines.map((line, i) => {
    const q = JSON.parse(line) as LabelledQuestion;
    const where = `${file}:${i + 1}`;
    if (typeof q.question !== 'string' || !q.question.trim()) throw new Error(`${where}: no question`);
    if (q.split !== 'dev' && q.split !== 'test') throw new Error(`${where}: split must be dev or test`);
    if (!Array.isArray(q.relevant) || q.relevant.length === 0) throw new Error(`${where}: no relevant pages`);
    for (const r of q.relevant) if (!fs.existsSync(path.join(docs, r))) throw new Error(`${where}: labelled page ${r} is not in ${docs}`);
    return q;
  });
}

/** A hit's page: the path under the tree, with a reST source counted as its HTML page. */
function pageOf(docs: string, documentPath: string): string {
  const rel = path.relative(docs, documentPath).split(path.sep).join('/');
  const source = /^_sources\/(.+)\.rst\.txt$/.exec(rel);
  return source ? `${source[1]}.html` : rel;
}

function tuningOverrides(params: string[]): Partial<SearchTuning> {
  const tuning: Record<string, number | boolean> = {};
  for (const p of params) {
    const [name, value] = p.split('=');
    const known = DEFAULT_SEARCH_TUNING[name as keyof SearchTuning];
    if (known === undefined || value === undefined) throw new Error(`--param ${p}: NAME=VALUE, NAME one of ${Object.keys(DEFAULT_SEARCH_TUNING).join(', ')}`);
    tuning[name] = typeof known === 'boolean' ? value === 'true' : Number(value);
    if (Number.isNaN(tuning[name])) throw new Error(`--param ${p}: not a number`);
  }
  return tuning as Partial<SearchTuning>;
}

interface RetrieverRun {
  retriever: string;
  scores: Record<'all' | 'dev' | 'test', RetrievalScores>;
  medianMs: number;
  misses: { id: string; question: string; relevant: string[]; top: string[] }[];
}

async function main(): Promise<void> {
  const docs = ensurePythonDocs(args.docs);
  const names = args.retriever ?? Object.keys(RETRIEVERS);
  for (const n of names) if (!RETRIEVERS[n]) throw new Error(`unknown retriever ${n}: one of ${Object.keys(RETRIEVERS).join(', ')}`);
  const tuning = tuningOverrides(args.param ?? []);
  const set = loadSet(path.resolve(args.set!), docs).filter((q) => args.split === 'all' || q.split === args.split);
  const work = args.db ? null : fs.mkdtempSync(path.join(os.tmpdir(), 'quire-bench-retrieval-'));
  const dbPath = args.db ? path.resolve(args.db) : path.join(work!, 'quire.db');
  const db = openDatabase(dbPath);
  try {
    const indexed = await indexFolder(db, docs, { countTokens: estimateTokens });
    const runs: RetrieverRun[] = [];
    for (const name of names) {
      const retriever = await RETRIEVERS[name].open(db, tuning);
      const results: (QuestionResult & { q: LabelledQuestion })[] = [];
      const ms: number[] = [];
      for (const q of set) {
        const t0 = performance.now();
        const hits = await retriever.retrieve(q.question, K);
        ms.push(performance.now() - t0);
        results.push({ q, rankedDocs: hits.slice(0, K).map((h) => pageOf(docs, h.documentPath)), relevant: new Set(q.relevant) });
      }
      await retriever.close?.();
      runs.push({
        retriever: name,
        scores: {
          all: scoreRetrieval(results),
          dev: scoreRetrieval(results.filter((r) => r.q.split === 'dev')),
          test: scoreRetrieval(results.filter((r) => r.q.split === 'test')),
        },
        medianMs: median(ms),
        misses: results
          .filter((r) => !r.rankedDocs.slice(0, 5).some((d) => r.relevant.has(d)))
          .map((r) => ({ id: r.q.id, question: r.q.question, relevant: r.q.relevant, top: r.rankedDocs.slice(0, 5) })),
      });
    }
    const result = { machine: machineLine(), docs, tuning: { ...DEFAULT_SEARCH_TUNING, ...tuning }, documents: indexed.files, passages: db.prepare('SELECT COUNT(*) FROM passages').pluck().get(), questions: set.length, k: K, runs };
    // JSON has no Infinity (an uncapped or prefix-free ranking): spell it out
    const json = (v: unknown) => JSON.stringify(v, (_, x) => (x === Infinity ? 'Infinity' : x));
    if (args.json) {
      console.log(json(result));
      return;
    }
    console.log(`machine: ${result.machine}`);
    console.log(`ranking: ${json(result.tuning)}`);
    console.log(`tree: ${docs}: ${result.documents} files, ${result.passages} passages; ${set.length} questions (${args.split})`);
    const f = (x: number) => x.toFixed(3);
    console.log('| retriever | questions | recall@5 | recall@10 | MRR | no hits | median ms/question |');
    console.log('|---|---|---:|---:|---:|---:|---:|');
    for (const r of runs) {
      for (const split of ['all', 'dev', 'test'] as const) {
        const s = r.scores[split];
        if (s.questions === 0 || (split !== 'all' && args.split !== 'all')) continue;
        console.log(`| ${r.retriever} | ${split === 'all' ? args.split : split} (${s.questions}) | ${f(s.recallAt5)} | ${f(s.recallAt10)} | ${f(s.mrr)} | ${s.empty} | ${split === 'all' ? r.medianMs.toFixed(1) : ''} |`);
      }
    }
    if (args.misses) {
      for (const r of runs) {
        console.log(`\n${r.retriever}: no relevant page in the first 5 hits (${r.misses.length})`);
        for (const m of r.misses) console.log(`  ${m.id} ${m.question}\n     want ${m.relevant.join(', ')}; got ${m.top.join(', ') || '(nothing)'}`);
      }
    }
  } finally {
    db.close();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  }
}

await main();
