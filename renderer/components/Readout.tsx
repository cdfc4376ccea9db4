import type { AnswerFiguresView } from '../../electron/contract/types.ts';

/**
 * How an answer was made, in figures that mean something: none for "nothing found" (the model did
 * not run), "all N passages already in this chat" for a follow-up that brought nothing new, else
 * the new passages' blocks reused and computed; and, when the passages found did not all fit the
 * model's context (electron/answering/prompt-fit.ts), how many were used, left out and shortened;
 * and whether the context was prepared while the question was typed (ask.prepare: only the final
 * block ran), also as data-prefetched for tests ("true", "false", or "" on stored answers).
 */
export function Readout({ figures }: { figures: AnswerFiguresView }) {
  // nothing found: no passage in the context and none left out to fit
  if (figures.contextPassages === 0 && !figures.passagesDropped) return null;
  const parts: string[] = [];
  if (figures.ttftMs !== null) parts.push(`TTFT ${Math.round(figures.ttftMs)} ms`);
  const reused = figures.reusedBlocks ?? 0;
  const computed = figures.computedBlocks ?? 0;
  const fresh = reused + computed;
  const inContext = figures.contextPassages;
  if (figures.reusedBlocks !== null || figures.computedBlocks !== null) {
    if (fresh === 0 && inContext) parts.push(`all ${inContext} passage${inContext === 1 ? '' : 's'} already in this chat`);
    else {
      const earlier = inContext !== null && inContext > fresh ? ` (+${inContext - fresh} already in this chat)` : '';
      parts.push(`blocks ${reused} reused / ${computed} computed${earlier}`);
    }
  }
  if (figures.prefetched) parts.push('prefetched while typing');
  if (figures.tokensPerSecond !== null && figures.tokensPerSecond > 0) parts.push(`${figures.tokensPerSecond.toFixed(1)} tokens/s`);
  if (figures.provider) parts.push(figures.provider);
  if (figures.mode) parts.push(figures.mode);
  if (figures.passagesDropped || figures.passagesShortened) {
    parts.push(`passages ${figures.passagesUsed} used / ${figures.passagesDropped} left out${figures.passagesShortened ? ` / ${figures.passagesShortened} shortened` : ''} to fit the model`);
  }
  if (parts.length === 0) return null;
  return (
    <p className="readout" aria-label="Answer figures" data-testid="readout" data-prefetched={figures.prefetched ?? ''}>
      {parts.join(' · ')}
    </p>
  );
}
