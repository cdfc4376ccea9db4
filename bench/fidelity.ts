// npm run bench:fidelity — how faithful block attention is on the REAL story model
// (../shared/fixtures/stories260k-llama2c), through electron/answering/fidelity.ts (the harness
// behind `quire fidelity`), on its built-in stories: KL(full || mode) over the final block and top-1
// agreement for full, isolated and shared-prefix, boundary recompute K in {0, 4, 8, 16, 32} on each,
// and every store codec on the default mode. Then the experiments the defaults are decided on:
// - where a fixed text sits (the answer instruction's question, issue 15): closing block 0, opening
//   the final block, or a block of its own after the passages, scored on the positions they share;
// - the final block's tokens with the answer instruction in it or before the passages, for the real
//   frame (prompt-blocks.ts) on three tokenizers;
// - the TTFT cost of boundary recompute and of each placement on the bench shape (Qwen2.5-0.5B's,
//   k = 10 passages of ~256 tokens, warm: the question path `ask`, medians of interleaved runs);
//   `-- --no-ttft` skips it (it needs the 1.5 GB bench model).
// Results: bench-output/fidelity.json and Markdown on stdout (docs/BENCHMARKS.md).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase } from '../db/open.ts';
import { Engine } from '../native-models/engine.ts';
import { loadModelFolder } from '../native-models/model-folder.ts';
import { TextTokenizer } from '../native-models/tokenizer.ts';
import { ask, type AnswerFigures } from '../electron/answering/ask.ts';
import {
  DEFAULT_KV_CODEC,
  FIDELITY_CODECS,
  fidelityRows,
  promptFidelity,
  type FidelityConfig,
  type FidelityPrompt,
  type FidelityRow,
  type PositionScores,
} from '../electron/answering/fidelity.ts';
import { tokenizeTextPrompt } from '../electron/answering/fidelity-prompts.ts';
import { SHARED_STORY_OPENING, STORIES_AS_PASSAGES, STORY_IN_BLOCKS, STORY_RETRIEVALS, storyRetrievalPrompt } from '../electron/answering/fidelity-stories.ts';
import { createAnswerContext } from '../electron/answering/passage-kv.ts';
import { finalBlockText, promptFrame, type AnswerInstructionPlacement } from '../electron/answering/prompt-blocks.ts';
import { defaultQualityMode } from '../electron/answering/quality-modes.ts';
import { benchModelDir } from './bench-model.ts';
import { BENCH_QUESTION, benchPassages } from './bench-passages.ts';
import { machineLine, median } from './stats.ts';

const STORY_MODEL = path.resolve('../shared/fixtures/stories260k-llama2c');
const LLAMA2_TOKENIZER_MODEL = path.resolve('../shared/fixtures/tiny-llama-fp16-genai');
const BOUNDARIES = [0, 4, 8, 16, 32];
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
/** The fixed text moved around in the placement experiment: a story model's stand-in for the answer instruction. */
const PLACED_TEXT = 'Mom smiled and said, "Listen well, here is one more story."';
const PLACEMENTS = ['instruction block', 'final block', 'own block'] as const;
type Placement = (typeof PLACEMENTS)[number];

/** Stories the model writes itself (seeded), for a larger retrieval-shaped set: how many, and their cut. */
const GENERATED_STORIES = 24;
const PASSAGE_TOKENS = 50;
const CONTINUATION_TOKENS = 50;

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const last = (s: PositionScores, n: number): PositionScores => ({ kl: s.kl.subarray(s.kl.length - n), agree: s.agree.subarray(s.agree.length - n) });

async function main(): Promise<void> {
  const withTtft = !process.argv.includes('--no-ttft');
  const engine = await Engine.load(STORY_MODEL, { provider: 'cpu' });
  const defaultMode = defaultQualityMode(engine);
  const shapes = { 'one story in blocks': STORY_IN_BLOCKS, 'stories as passages': STORIES_AS_PASSAGES };
  const texts = Object.values(shapes).flat();
  const prompts = texts.map((p) => tokenizeTextPrompt(engine, p));

  // 1. the table
  const configs: FidelityConfig[] = [{ mode: 'full', boundaryTokens: 0, codec: 'none' }];
  for (const mode of ['isolated', 'shared-prefix'] as const) for (const k of BOUNDARIES) configs.push({ mode, boundaryTokens: k, codec: DEFAULT_KV_CODEC });
  for (const codec of FIDELITY_CODECS) if (codec !== DEFAULT_KV_CODEC) configs.push({ mode: defaultMode, boundaryTokens: 0, codec });
  const perPrompt: PositionScores[][] = [];
  for (const p of prompts) perPrompt.push(await promptFidelity(engine, p, configs));
  const all = fidelityRows(configs, perPrompt);
  let at = 0;
  const byShape: Record<string, FidelityRow[]> = {};
  for (const [name, set] of Object.entries(shapes)) {
    byShape[name] = fidelityRows(configs, perPrompt.slice(at, at + set.length));
    at += set.length;
  }
  const configIndex = (mode: string, k: number) => configs.findIndex((c) => c.mode === mode && c.boundaryTokens === k && c.codec === DEFAULT_KV_CODEC);
  const iso = configIndex('isolated', 0);
  const shared = configIndex('shared-prefix', 0);
  const paired = pairedDifference(perPrompt, iso, shared);

  // where the passage the continuation needs sits (retrieval puts the best one first), on the
  // hand-written retrievals and on stories the model wrote itself
  const modeConfigs: FidelityConfig[] = (['isolated', 'shared-prefix'] as const).map((mode) => ({ mode, boundaryTokens: 0, codec: DEFAULT_KV_CODEC }));
  const generated = await generatedRetrievals(engine);
  const relevantAt = [];
  for (const [set, make] of [
    ['hand-written', (position: number) => STORY_RETRIEVALS.map((r) => tokenizeTextPrompt(engine, storyRetrievalPrompt(r, position)))],
    ['generated', (position: number) => generated.map((g) => g(position))],
  ] as const) {
    for (const position of [0, 1, 2]) {
      const scores: PositionScores[][] = [];
      for (const p of make(position)) scores.push(await promptFidelity(engine, p, modeConfigs));
      relevantAt.push({ set, prompts: scores.length, position: position + 1, rows: fidelityRows(modeConfigs, scores), paired: pairedDifference(scores, 0, 1) });
    }
  }

  // 2. where a fixed text sits
  const placedIds = engine.tokenizer.encode(PLACED_TEXT);
  const placementConfigs = modeConfigs;
  const placed = (p: FidelityPrompt, where: Placement): FidelityPrompt => {
    if (where === 'instruction block') return { blockIds: [[...p.blockIds[0], ...placedIds], ...p.blockIds.slice(1)], finalIds: p.finalIds };
    if (where === 'final block') return { blockIds: p.blockIds, finalIds: [...placedIds, ...p.finalIds] };
    return { blockIds: [...p.blockIds, placedIds], finalIds: p.finalIds };
  };
  const placementPrompts = [...prompts, ...generated.map((g) => g(0))];
  const placement = [];
  const tails = new Map<Placement, PositionScores[][]>();
  for (const where of PLACEMENTS) {
    const scores: PositionScores[][] = [];
    for (const p of placementPrompts) scores.push(await promptFidelity(engine, placed(p, where), placementConfigs));
    // scored on the continuation's own positions, which every placement has (the final block's tail)
    tails.set(where, scores.map((s, i) => s.map((x) => last(x, placementPrompts[i].finalIds.length))));
    const onQuestion = fidelityRows(placementConfigs, tails.get(where)!);
    const onLast = fidelityRows(placementConfigs, scores, (s) => last(s, 1));
    const wholeFinal = fidelityRows(placementConfigs, scores);
    placement.push({
      where,
      prompts: placementPrompts.length,
      finalBlockTokens: mean(placementPrompts.map((p) => placed(p, where).finalIds.length)),
      rows: placementConfigs.map((c, i) => ({ mode: c.mode, klQuestion: onQuestion[i].klMean, top1Question: onQuestion[i].top1, klLast: onLast[i].klMean, klFinalBlock: wholeFinal[i].klMean })),
    });
  }
  // per prompt, on the continuation: before the passages minus in the final block
  const placementPaired = placementConfigs.map((c, m) => ({
    mode: c.mode,
    paired: pairedDifference(placementPrompts.map((_, i) => [tails.get('instruction block')![i][m], tails.get('final block')![i][m]]), 0, 1),
  }));
  await engine.release();

  // 3. the real frame's final block, answer instruction in it or before the passages
  const frames = [];
  for (const [name, dir] of [['stories260K (raw, 512 tokens)', STORY_MODEL], ['Llama-2 tokenizer + chat template (32K)', LLAMA2_TOKENIZER_MODEL], ['bench shape, generated tokenizer (8K, ChatML)', withTtft ? await benchModelDir() : undefined]] as const) {
    if (!dir) continue;
    const model = loadModelFolder(dir);
    const tokenizer = new TextTokenizer(model);
    const count = (where: AnswerInstructionPlacement) => {
      const frame = promptFrame({ model, tokenizer }, where);
      return { instructionBlock: frame.instructionIds.length, finalBlock: tokenizer.encode(finalBlockText(BENCH_QUESTION, frame)).length };
    };
    frames.push({ tokenizer: name, final: count('final'), instruction: count('instruction') });
  }

  // 4. TTFT on the bench shape
  const ttft = withTtft ? await measureTtft() : undefined;

  const result = { date: new Date().toISOString(), machine: machineLine(), model: STORY_MODEL, prompts: prompts.length, defaultMode, rows: all, byShape, paired, relevantAt, placedText: PLACED_TEXT, placement, placementPaired, frames, ttft };
  fs.mkdirSync('bench-output', { recursive: true });
  fs.writeFileSync('bench-output/fidelity.json', JSON.stringify(result, null, 2));
  printMarkdown(result);
}

/** Per prompt, config a's klMean minus config b's: how often a is lower, the mean and its standard error, the median. */
function pairedDifference(scores: readonly PositionScores[][], a: number, b: number) {
  const d = scores.map((s) => mean([...s[a].kl]) - mean([...s[b].kl]));
  const m = mean(d);
  return {
    aLower: d.filter((x) => x < 0).length,
    of: d.length,
    meanDifference: m,
    standardError: Math.sqrt(d.reduce((acc, x) => acc + (x - m) ** 2, 0) / (d.length - 1) / d.length),
    medianDifference: median(d),
  };
}

/**
 * Retrieval-shaped prompts from stories the model writes itself (seeded sampling from "Once upon a
 * time"): each story's first PASSAGE_TOKENS tokens are its passage, the next CONTINUATION_TOKENS the
 * final block; the other two passages are the next stories' openings. Returns, per story, its prompt
 * with the relevant passage at a given position.
 */
async function generatedRetrievals(engine: Engine): Promise<((position: number) => FidelityPrompt)[]> {
  const opening = engine.tokenizer.encode(SHARED_STORY_OPENING, { bos: true });
  const stories: { passage: number[]; continuation: number[] }[] = [];
  for (let seed = 1; stories.length < GENERATED_STORIES; seed++) {
    const r = await engine.generate({ blocks: [], prompt: 'Once upon a time', raw: true, mode: 'full', maxNewTokens: PASSAGE_TOKENS + CONTINUATION_TOKENS, sampling: { temperature: 0.8, seed } });
    if (r.tokenIds.length < PASSAGE_TOKENS + CONTINUATION_TOKENS) continue; // ended early
    const ids = [...r.promptTokenIds.slice(1), ...r.tokenIds]; // without BOS: a passage block has none
    stories.push({ passage: ids.slice(0, PASSAGE_TOKENS), continuation: ids.slice(PASSAGE_TOKENS, PASSAGE_TOKENS + CONTINUATION_TOKENS) });
  }
  return stories.map((story, i) => (position: number) => {
    const others = [1, 2].map((j) => stories[(i + j) % stories.length].passage);
    others.splice(position, 0, story.passage);
    return { blockIds: [opening, ...others], finalIds: story.continuation };
  });
}

interface TtftRow {
  name: string;
  ttftMs: number;
  reencodeMs: number;
  finalMs: number;
  finalTokens: number;
}

async function measureTtft(): Promise<{ promptTokens: number; rows: TtftRow[] }> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-bench-fidelity-'));
  const db = openDatabase(path.join(tmp, 'bench.db'));
  const engine = await Engine.load(await benchModelDir(), { provider: 'cpu' });
  try {
    const passages = benchPassages(engine, 10, 256);
    const contexts = {
      final: await createAnswerContext(db, engine, { answerInstruction: 'final', fingerprint: 'bench' }),
      instruction: await createAnswerContext(db, engine, { answerInstruction: 'instruction', fingerprint: 'bench' }),
    };
    const cases: { name: string; ctx: keyof typeof contexts; boundaryTokens: number }[] = [
      ...BOUNDARIES.map((k) => ({ name: `answer instruction in the final block, boundary ${k}`, ctx: 'final' as const, boundaryTokens: k })),
      { name: 'answer instruction before the passages, boundary 0', ctx: 'instruction', boundaryTokens: 0 },
    ];
    const run = (c: (typeof cases)[number]) => ask(contexts[c.ctx], BENCH_QUESTION, { passages, maxNewTokens: 1, boundaryTokens: c.boundaryTokens });
    for (const c of cases) await run(c); // stores every passage block (each placement has its own variant), warms up
    const figures = cases.map(() => [] as AnswerFigures[]);
    for (let r = 0; r < RUNS; r++) {
      for (const [i, c] of cases.entries()) {
        const answer = await run(c);
        if (answer.figures.computedBlocks > 0) throw new Error(`${c.name}: ${answer.figures.computedBlocks} blocks were not stored`);
        figures[i].push(answer.figures);
      }
    }
    const promptTokens = figures[0][0].promptTokens;
    return {
      promptTokens,
      rows: cases.map((c, i) => ({
        name: c.name,
        ttftMs: median(figures[i].map((f) => f.ttftMs)),
        reencodeMs: median(figures[i].map((f) => f.reencodeMs)),
        finalMs: median(figures[i].map((f) => f.finalMs)),
        finalTokens: engine.tokenizer.encode(finalBlockText(BENCH_QUESTION, contexts[c.ctx].frame)).length,
      })),
    };
  } finally {
    await engine.release();
    db.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

type Paired = ReturnType<typeof pairedDifference>;

function printMarkdown(r: {
  date: string;
  machine: string;
  prompts: number;
  defaultMode: string;
  rows: FidelityRow[];
  byShape: Record<string, FidelityRow[]>;
  paired: Paired;
  relevantAt: { set: string; prompts: number; position: number; rows: FidelityRow[]; paired: Paired }[];
  placementPaired: { mode: string; paired: Paired }[];
  placement: { where: string; prompts: number; finalBlockTokens: number; rows: { mode: string; klQuestion: number; top1Question: number; klLast: number; klFinalBlock: number }[] }[];
  frames: { tokenizer: string; final: { instructionBlock: number; finalBlock: number }; instruction: { instructionBlock: number; finalBlock: number } }[];
  ttft?: { promptTokens: number; rows: TtftRow[] };
}): void {
  const kl = (x: number) => x.toExponential(2);
  const pairedText = (p: Paired, a = 'isolated') =>
    `${a} lower on ${p.aLower} of ${p.of}, mean ${kl(p.meanDifference)} (s.e. ${kl(p.standardError)}), median ${kl(p.medianDifference)}`;
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const shapes = Object.keys(r.byShape);
  const lines = [
    `${r.date.slice(0, 10)}, ${r.machine}, CPU provider; stories260K, ${r.prompts} built-in prompts (${shapes.join(', ')}); default mode ${r.defaultMode}`,
    '',
    `| mode | boundary K | codec | klMean (nats) | top1 | ${shapes.map((s) => `${s}: klMean / top1`).join(' | ')} |`,
    `|---|---:|---|---:|---:|${shapes.map(() => '---:|').join('')}`,
    ...r.rows.map(
      (row, i) =>
        `| ${row.mode} | ${row.boundaryTokens} | ${row.codec} | ${kl(row.klMean)} | ${pct(row.top1)} | ${shapes.map((s) => `${kl(r.byShape[s][i].klMean)} / ${pct(r.byShape[s][i].top1)}`).join(' | ')} |`,
    ),
    '',
    `Paired per prompt (boundary 0, ${DEFAULT_KV_CODEC}): ${pairedText(r.paired)}.`,
    '',
    'Retrieval-shaped prompts, the passage the continuation needs at each position (boundary 0, ' +
      `${DEFAULT_KV_CODEC}); generated: ${GENERATED_STORIES} stories the model wrote (seeded), ${PASSAGE_TOKENS}-token passages, ${CONTINUATION_TOKENS}-token continuations:`,
    '',
    '| prompts | relevant passage at | isolated: klMean / top1 | shared-prefix: klMean / top1 | paired, isolated minus shared-prefix |',
    '|---|---:|---:|---:|---|',
    ...r.relevantAt.map((x) => `| ${x.set} (${x.prompts}) | ${x.position} | ${x.rows.map((y) => `${kl(y.klMean)} / ${pct(y.top1)}`).join(' | ')} | ${pairedText(x.paired)} |`),
    '',
    `Placement of a fixed text (${JSON.stringify(PLACED_TEXT)}), ${r.placement[0].prompts} prompts (built-in + generated, relevant passage first), boundary 0, ${DEFAULT_KV_CODEC}; ` +
      'KL on the continuation\'s positions (all placements have them), on its last position, and on the whole final block:',
    '',
    '| fixed text in | final block tokens (mean) | mode | KL, continuation | top1, continuation | KL, last position | KL, whole final block |',
    '|---|---:|---|---:|---:|---:|---:|',
    ...r.placement.flatMap((p) =>
      p.rows.map((x) => `| ${p.where} | ${p.finalBlockTokens.toFixed(1)} | ${x.mode} | ${kl(x.klQuestion)} | ${pct(x.top1Question)} | ${kl(x.klLast)} | ${kl(x.klFinalBlock)} |`),
    ),
    '',
    ...r.placementPaired.map((x) => `Paired on the continuation, ${x.mode}, instruction block minus final block: ${pairedText(x.paired, 'instruction block')}.`),
    '',
    'The real frame (prompt-blocks.ts), bench question: tokens of the instruction block / final block, answer instruction in the final block vs before the passages:',
    '',
    '| tokenizer | in the final block | before the passages | final block saved |',
    '|---|---:|---:|---:|',
    ...r.frames.map(
      (f) =>
        `| ${f.tokenizer} | ${f.final.instructionBlock} / ${f.final.finalBlock} | ${f.instruction.instructionBlock} / ${f.instruction.finalBlock} | ${pct(1 - f.instruction.finalBlock / f.final.finalBlock)} |`,
    ),
  ];
  if (r.ttft) {
    lines.push(
      '',
      `TTFT on the bench shape, warm (KV stored), k = 10 passages, ${r.ttft.promptTokens} prompt tokens, medians of ${RUNS} interleaved runs after a warm-up:`,
      '',
      '| case | final block tokens | TTFT (ms) | re-encode + boundary (ms) | final block (ms) |',
      '|---|---:|---:|---:|---:|',
      ...r.ttft.rows.map((x) => `| ${x.name} | ${x.finalTokens} | ${x.ttftMs.toFixed(0)} | ${x.reencodeMs.toFixed(0)} | ${x.finalMs.toFixed(0)} |`),
    );
  }
  console.log(lines.join('\n'));
}

await main();
