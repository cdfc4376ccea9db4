import type { TextParts } from '../../electron/contract/types.ts';

/** Text with highlighted runs as <mark>: built from parts, never from HTML. */
export function Highlighted({ parts }: { parts: TextParts }) {
  return (
    <>
      {parts.map((p, i) => (p.highlighted ? <mark key={i}>{p.text}</mark> : <span key={i}>{p.text}</span>))}
    </>
  );
}
