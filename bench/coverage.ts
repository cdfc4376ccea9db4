// npm run bench:coverage — how often the blocks a question retrieves are already stored, with a
// library ten times larger than the KV budget, through the product's question path (answering/
// ask.ts) and its background prefill (answering/background-prefill.ts, as the engine host runs it),
// compared with what the store did before (plain LRU eviction, no predictive prefill) and with each
// part alone.
//
// Library (per seed): TOPICS generated topics (seeded pseudo-words) x DOCS documents x PARAGRAPHS
// passages of 70 words, written with the db functions. Passage j of every document of a topic
// covers the topic's section j (its own words), besides the topic's words, the document's own words
// and common English words. Budget: a tenth of the library's KV under the store's codec.
// Questions (QUESTIONS per stream, k = 5): a topic by Zipf (s = ZIPF_S) over the topics, a section
// of it by Zipf over its sections, in that section's and the topic's words. Two streams: with
// follow-ups (a question stays on its predecessor's topic with probability FOLLOW_UPS[0], as a
// conversation does) and pure Zipf. The store's clock is simulated: a follow-up comes 30 s after its
// predecessor, a new topic after an exponential wait of mean 6 h (use scores decay by it).
// Between questions the background prefill runs GAP_BLOCKS computed blocks (blocks found stored
// already cost a lookup and are not counted): at the issue's 0.5 blocks/s on CPU for a 0.5B model,
// about 30 s between questions. Before the first question it fills the budget's free room (as after
// indexing). Measured: the share of retrieved blocks stored before each question, over the
// questions after the first WARMUP; and stored bytes against the budget after every answer and
// every gap. SEEDS libraries and streams; mean and range over them.
// Model: a generated tiny model (the policy is measured, not the model: a block is a block).
// Results: bench-output/coverage.json and a Markdown table on stdout (docs/BENCHMARKS.md).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { upsertDocument } from '../db/documents.ts';
import { addFolder } from '../db/folders.ts';
import { kvBlobBytes } from '../db/kv-codec.ts';
import type { KvEvictionPolicy } from '../db/kv-eviction.ts';
import { KvStore, storedKvTotals } from '../db/kv-store.ts';
import { openDatabase, type Db } from '../db/open.ts';
import { replacePassages } from '../db/passages.ts';
import { Engine } from '../native-models/engine.ts';
import { modelFingerprint } from '../native-models/model-folder.ts';
import { seededRandom } from '../native-models/seeded-random.ts';
import { ask } from '../electron/answering/ask.ts';
import { BackgroundPrefill } from '../electron/answering/background-prefill.ts';
import { createAnswerContext, passageIds } from '../electron/answering/passage-kv.ts';
import type { PrefillQueue } from '../electron/answering/prefill-queue.ts';
import { generateModel } from '../test/tools/generate-model.ts';
import { tinySpec } from '../test/tools/tiny-model-spec.ts';
import { scoreCoverage, zipfSampler, type CoverageScore, type QuestionRecord } from './coverage-metrics.ts';
import { machineLine } from './stats.ts';

const TOPICS = Number(process.env.BENCH_TOPICS ?? 32);
const DOCS = 6;
const PARAGRAPHS = 5;
const QUESTIONS = Number(process.env.BENCH_QUESTIONS ?? 40);
const WARMUP = 10;
const K = 5;
const ZIPF_S = Number(process.env.BENCH_ZIPF_S ?? 1);
const GAP_BLOCKS = Number(process.env.BENCH_GAP_BLOCKS ?? 16);
/** Simulated time (the store's clock, which eviction's use scores decay by): a follow-up comes this much later... */
const FOLLOW_UP_GAP_MS = 30_000;
/** ...a new session after an exponential wait of this mean. */
const SESSION_GAP_MS = 6 * 3_600_000;
/** Streams: with follow-ups (a question stays on its predecessor's topic with this probability), and pure Zipf. */
const FOLLOW_UPS = [Number(process.env.BENCH_FOLLOW_UP ?? 0.6), 0];
const BUDGET_SHARE = 0.1;
const SEEDS = Number(process.env.BENCH_SEEDS ?? 5);
const FIRST_SEED = 11;

interface Config {
  name: string;
  eviction: KvEvictionPolicy;
  predict: boolean;
}

const CONFIGS: Config[] = [
  { name: 'LRU, no predictive prefill (before)', eviction: 'lru', predict: false },
  { name: 'use scores, no predictive prefill', eviction: 'use-score', predict: false },
  { name: 'LRU + predictive prefill', eviction: 'lru', predict: true },
  { name: 'use scores + predictive prefill (Quire)', eviction: 'use-score', predict: true },
];

/** Seeded pseudo-words: consonant-vowel syllables, distinct across the library. */
function wordMaker(rand: () => number): () => string {
  const C = 'bdfgklmnprstvz';
  const V = 'aeiou';
  const made = new Set<string>();
  return () => {
    for (;;) {
      let w = '';
      const syllables = 2 + Math.floor(rand() * 2);
      for (let i = 0; i < syllables; i++) w += C[Math.floor(rand() * C.length)] + V[Math.floor(rand() * V.length)];
      if (!made.has(w)) {
        made.add(w);
        return w;
      }
    }
  };
}

const COMMON = (
  'the of and to in a is that for it as was with be by on not he this are or his from at which but have an they you were her ' +
  'she there been one all we their has would when if so no will more can out up about said what its into than them only some ' +
  'time could these two may first then do any like my now over such our man me even most made after also did many before must ' +
  'through back years where much your way well down should because each just those people how too little state good very make'
).split(' ');

interface Topic {
  name: string;
  words: string[];
  /** Per section (passage ordinal), the words of what every document says there. */
  sections: string[][];
  docs: { title: string; facet: string[] }[];
}

function makeLibrary(db: Db, rand: () => number): Topic[] {
  const word = wordMaker(rand);
  const folder = addFolder(db, '/library');
  const topics: Topic[] = [];
  const now = Date.now();
  for (let t = 0; t < TOPICS; t++) {
    const topic: Topic = {
      name: word(),
      words: Array.from({ length: 24 }, word),
      sections: Array.from({ length: PARAGRAPHS }, () => [word(), word(), word()]),
      docs: [],
    };
    const pickTopicWord = zipfSampler(topic.words.length, 1, rand);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)];
    for (let d = 0; d < DOCS; d++) {
      const facet = [word(), word(), word()];
      const title = `${topic.name} ${facet[0]}`;
      topic.docs.push({ title, facet });
      // passage j of every document of the topic covers the topic's section j (as reports and
      // manuals on one subject share their outline), in its own words besides
      const texts = topic.sections.map((section) => {
        const words: string[] = [];
        for (let i = 0; i < 70; i++) {
          const u = rand();
          words.push(u < 0.1 ? pick(section) : u < 0.18 ? topic.words[pickTopicWord()] : u < 0.23 ? pick(facet) : pick(COMMON));
        }
        return `${words.join(' ')}.`;
      });
      // modification times spread over the last 60 days: a few documents are "recent"
      const doc = upsertDocument(db, { folderId: folder.id, path: `/library/${t}/${d}.md`, size: 1, mtimeMs: now - rand() * 60 * 86_400_000, title, status: 'indexed' });
      let at = 0;
      replacePassages(
        db,
        doc.id,
        texts.map((text) => ({ title, text, charStart: at, charEnd: (at += text.length) })),
      );
    }
    topics.push(topic);
  }
  return topics;
}

/**
 * A question: a follow-up on the previous question's topic (probability `followUp`), else a topic
 * drawn by Zipf over all of them (often one asked before); then a section of it (Zipf over them:
 * some aspects are asked more), in two of that section's words and one of the topic's four
 * commonest, at times with a word of one document.
 */
function makeQuestions(topics: Topic[], rand: () => number, followUp: number): { text: string; topic: number; atMs: number }[] {
  const pickTopic = zipfSampler(topics.length, ZIPF_S, rand);
  const pickSection = zipfSampler(PARAGRAPHS, 1, rand);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)];
  let current = -1;
  let atMs = 0;
  return Array.from({ length: QUESTIONS }, () => {
    if (current < 0 || rand() >= followUp) {
      current = pickTopic();
      atMs += -Math.log(1 - rand()) * SESSION_GAP_MS; // a new session: hours later
    } else {
      atMs += FOLLOW_UP_GAP_MS;
    }
    const topic = topics[current];
    const [a, b] = [...topic.sections[pickSection()]].sort(() => rand() - 0.5);
    const detail = rand() < 0.3 ? ` as ${pick(pick(topic.docs).facet)} has it` : '';
    return { text: `What do the notes on ${topic.name} say about ${a} and ${b} or ${pick(topic.words.slice(0, 4))}${detail}?`, topic: current, atMs };
  });
}

/** Of the questions after the warm-up, the share whose topic was asked before (what any store could have ready). */
function repeatTopicShare(questions: readonly { topic: number }[]): number {
  const seen = new Set<number>();
  let repeats = 0;
  questions.forEach((q, i) => {
    if (i >= WARMUP && seen.has(q.topic)) repeats++;
    seen.add(q.topic);
  });
  return repeats / Math.max(1, questions.length - WARMUP);
}

/** Lets the queue compute `blocks` blocks (those found stored do not count), then pauses it. */
async function runBlocks(queue: PrefillQueue, blocks: number): Promise<number> {
  let computed = 0;
  const off = queue.onSettled((s) => {
    if (s.outcome === 'prefilled' && ++computed >= blocks) queue.pause();
  });
  queue.resume();
  await queue.idle();
  queue.pause();
  off();
  return computed;
}

async function runConfig(
  config: Config,
  libraryFile: string,
  engine: Engine,
  fingerprint: string,
  budgetBytes: number,
  questions: readonly { text: string; atMs: number }[],
): Promise<Omit<Run, 'seed' | 'followUp'>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-bench-coverage-run-'));
  const file = path.join(dir, 'quire.db');
  fs.copyFileSync(libraryFile, file); // the library alone: its KV file starts empty
  const db = openDatabase(file);
  try {
    const start = Date.now();
    let clock = start;
    const store = new KvStore(db, { budgetBytes, eviction: config.eviction, now: () => clock });
    const ctx = await createAnswerContext(db, engine, { store, fingerprint });
    const background = new BackgroundPrefill(db, ctx, { mode: ctx.defaultQuality, predict: config.predict });
    background.planLibrary(budgetBytes); // as after indexing: the budget's free room, recent documents first
    await background.queue.idle();
    background.queue.pause();
    const records: QuestionRecord[] = [];
    let gapBlocks = 0;
    const t0 = performance.now();
    for (const { text: question, atMs } of questions) {
      clock = start + 60_000 + atMs;
      const r = await ask(ctx, question, { k: K, maxNewTokens: 1 });
      const storedBytesAfterAnswer = storedKvTotals(db).bytes;
      background.afterQuestion({ question, k: K, passageIds: r.passages.map((p) => p.passageId) });
      gapBlocks += await runBlocks(background.queue, GAP_BLOCKS);
      records.push({
        reused: r.figures.reusedBlocks,
        retrieved: r.passages.length,
        storedBytesAfterAnswer,
        storedBytesAfterPrefill: storedKvTotals(db).bytes,
        budgetBytes,
      });
    }
    background.close();
    const score = scoreCoverage(records, WARMUP);
    const perQuestion = records.map((r) => `${r.reused}/${r.retrieved}`).join(' ');
    console.error(`    ${config.name}: ${(score.storedShare * 100).toFixed(1)}% stored after the warm-up; ${perQuestion}`);
    return { ...config, score, gapBlocks, seconds: (performance.now() - t0) / 1000, perQuestion };
  } finally {
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

interface Run extends Config {
  seed: number;
  followUp: number;
  score: CoverageScore;
  gapBlocks: number;
  seconds: number;
  perQuestion: string;
}

/** One library (seeded), its two question streams, every policy on each. */
async function runSeed(seed: number, engine: Engine, fingerprint: string, tmp: string) {
  const libraryFile = path.join(tmp, `library-${seed}.db`);
  const db = openDatabase(libraryFile);
  const topics = makeLibrary(db, seededRandom(seed));
  const streams = FOLLOW_UPS.map((followUp, i) => {
    const questions = makeQuestions(topics, seededRandom(seed * 101 + i), followUp);
    return { followUp, questions, repeatTopicShare: repeatTopicShare(questions) };
  });
  // the library's KV under the store's codec: every passage block tokenized as prefill will
  const codec = new KvStore(db).defaultCodec;
  const probe = await createAnswerContext(db, engine, { fingerprint });
  const passages = db
    .prepare('SELECT p.id AS passageId, COALESCE(p.title, d.title) AS title, p.text FROM passages p JOIN documents d ON d.id = p.document_id')
    .all() as { passageId: number; title: string | null; text: string }[];
  const blockTokens = passages.map((p) => passageIds(probe, p).length);
  const libraryBytes = blockTokens.reduce((sum, tokens) => sum + kvBlobBytes(codec, { ...engine.runner.kvShape, tokens }), 0);
  db.close();
  const budgetBytes = Math.floor(libraryBytes * BUDGET_SHARE);
  const meanBlockTokens = blockTokens.reduce((a, b) => a + b, 0) / blockTokens.length;
  console.error(
    `seed ${seed}: ${passages.length} passages (${TOPICS} topics x ${DOCS} documents x ${PARAGRAPHS}), ~${meanBlockTokens.toFixed(0)} tokens a block, ` +
      `${(libraryBytes / 2 ** 20).toFixed(1)} MiB of ${codec} KV; budget ${(budgetBytes / 2 ** 20).toFixed(2)} MiB`,
  );
  const runs: Run[] = [];
  for (const stream of streams) {
    console.error(`  stream with follow-ups ${stream.followUp}: after the warm-up, ${(stream.repeatTopicShare * 100).toFixed(0)}% of questions are on a topic asked before`);
    for (const config of CONFIGS) runs.push({ seed, followUp: stream.followUp, ...(await runConfig(config, libraryFile, engine, fingerprint, budgetBytes, stream.questions)) });
  }
  return {
    seed,
    library: { passages: passages.length, meanBlockTokens, libraryBytes, codec },
    budgetBytes,
    streams: streams.map((x) => ({ followUp: x.followUp, repeatTopicShare: x.repeatTopicShare, questions: x.questions })),
    runs,
  };
}

async function main(): Promise<void> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-bench-coverage-'));
  try {
    const modelDir = path.join(tmp, 'model');
    await generateModel(modelDir, tinySpec({ seed: 5, kvDtype: 'float16' }));
    const engine = await Engine.load(modelDir, { provider: 'cpu' });
    const fingerprint = await modelFingerprint(engine.model);
    const seeds = [];
    for (let i = 0; i < SEEDS; i++) seeds.push(await runSeed(FIRST_SEED + i, engine, fingerprint, tmp));
    await engine.release();
    const runs = seeds.flatMap((x) => x.runs);
    const result = {
      date: new Date().toISOString(),
      machine: machineLine(),
      topics: TOPICS,
      documentsPerTopic: DOCS,
      passagesPerDocument: PARAGRAPHS,
      budgetShare: BUDGET_SHARE,
      questions: QUESTIONS,
      warmup: WARMUP,
      k: K,
      zipfS: ZIPF_S,
      gapBlocks: GAP_BLOCKS,
      seeds,
    };
    fs.mkdirSync('bench-output', { recursive: true });
    fs.writeFileSync('bench-output/coverage.json', JSON.stringify(result, null, 2));
    const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
    const lines = [
      `${SEEDS} libraries (seeds ${FIRST_SEED}-${FIRST_SEED + SEEDS - 1}); mean over them (min-max)`,
      '',
      `| stream | policy | blocks stored before the question (questions ${WARMUP + 1}-${QUESTIONS}) | questions with all ${K} stored | over budget | peak stored / budget | blocks prefilled between questions |`,
      '|---|---|---:|---:|---:|---:|---:|',
    ];
    for (const followUp of FOLLOW_UPS) {
      const repeat = seeds.map((x) => x.streams.find((st) => st.followUp === followUp)!.repeatTopicShare);
      for (const config of CONFIGS) {
        const mine = runs.filter((r) => r.followUp === followUp && r.name === config.name);
        const shares = mine.map((r) => r.score.storedShare);
        const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
        lines.push(
          `| ${followUp > 0 ? `follow-ups ${followUp}` : 'Zipf only'} (${pct(mean(repeat))} on a topic asked before) | ${config.name} | ` +
            `**${pct(mean(shares))}** (${pct(Math.min(...shares))}-${pct(Math.max(...shares))}) | ${mean(mine.map((r) => r.score.allStored)).toFixed(1)} of ${mine[0].score.counted} | ` +
            `${mine.reduce((n, r) => n + r.score.overBudget, 0)} | ${pct(Math.max(...mine.map((r) => r.score.peakBudgetShare)))} | ${mean(mine.map((r) => r.gapBlocks)).toFixed(0)} |`,
        );
      }
    }
    console.log(lines.join('\n'));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
