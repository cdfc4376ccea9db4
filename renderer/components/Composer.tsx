import type { KeyboardEvent } from 'react';
import { QUESTION_MAX_CHARS } from '../../electron/contract/types.ts';
import { formatCount } from '../format.ts';

/** From this length on, the composer counts the characters left. */
export const COUNTER_FROM = Math.floor(QUESTION_MAX_CHARS * 0.8);

/**
 * The question box: Enter sends, Shift+Enter adds a line; a counter near the length limit and a
 * plain message past it (Send is off then); Stop while an answer is written; why the last question
 * was refused, when it was. `prepared`: the question as typed has its context prepared (nothing
 * shows; data-prepared tells tests when Enter will find it ready).
 */
export function Composer({
  draft,
  onDraft,
  onSend,
  onStop,
  running,
  prepared = false,
  disabledReason,
  error,
}: {
  draft: string;
  onDraft: (text: string) => void;
  onSend: () => void;
  onStop: () => void;
  running: boolean;
  prepared?: boolean;
  /** Why a question cannot be sent now (no model...), shown as the box's placeholder. */
  disabledReason?: string;
  error: string | null;
}) {
  const length = draft.trim().length;
  const tooLong = length > QUESTION_MAX_CHARS;
  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      if (!tooLong) onSend();
    }
  };
  return (
    <form
      className="composer"
      data-prepared={prepared}
      onSubmit={(e) => {
        e.preventDefault();
        if (!tooLong) onSend();
      }}
    >
      <div className="composer-box">
        <textarea
          aria-label="Ask a question"
          aria-invalid={tooLong}
          aria-describedby="composer-status"
          placeholder={disabledReason ?? 'Ask a question (Enter sends, Shift+Enter for a new line)'}
          value={draft}
          rows={2}
          onChange={(e) => onDraft(e.target.value)}
          onKeyDown={onKeyDown}
        />
        {running ? (
          <button type="button" onClick={onStop}>
            Stop
          </button>
        ) : (
          <button type="submit" disabled={!draft.trim() || tooLong}>
            Send
          </button>
        )}
      </div>
      <div id="composer-status" className="composer-status">
        {tooLong ? (
          <p className="error" role="alert">
            This question is too long: {formatCount(length)} characters, the limit is {formatCount(QUESTION_MAX_CHARS)}. Shorten it, or ask
            about one part at a time.
          </p>
        ) : (
          length >= COUNTER_FROM && (
            <p className="note" data-testid="question-counter">
              {formatCount(length)} / {formatCount(QUESTION_MAX_CHARS)} characters
            </p>
          )
        )}
        {error && (
          <p className="error" role="alert" data-testid="composer-error">
            {error}
          </p>
        )}
      </div>
    </form>
  );
}
