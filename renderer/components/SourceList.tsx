import type { CitationView } from '../../electron/contract/types.ts';
import { basename, distinctLabels } from '../format.ts';

/**
 * An answer's sources grouped by document: each document once, named so that two files are told
 * apart (file name, with parent folders where names repeat; full path on hover), then its passages
 * by number, section and page.
 */
export function SourceList({
  items,
  cited,
  onOpen,
}: {
  items: readonly CitationView[];
  /** true: the passages the answer cites; false: the passages it was given (it cited none). */
  cited: boolean;
  onOpen: (c: CitationView) => void;
}) {
  const groups = new Map<string, CitationView[]>();
  for (const c of items) groups.set(c.documentPath, [...(groups.get(c.documentPath) ?? []), c]);
  const labels = distinctLabels([...groups.keys()]);
  return (
    <div className="sources">
      <p className="sources-heading">{cited ? 'Sources' : 'Passages given to the model (the answer cites none)'}</p>
      <ul aria-label={cited ? 'Citations' : 'Sources'}>
        {[...groups].map(([documentPath, passages]) => (
          <li key={documentPath} className="source-doc">
            <span className="source-file" title={documentPath}>
              {labels.get(documentPath) ?? basename(documentPath)}
            </span>
            {passages.map((c) => (
              <button key={c.ordinal} type="button" aria-label={`Citation ${c.ordinal}: ${documentPath}${c.page ? `, page ${c.page}` : ''}`} onClick={() => onOpen(c)}>
                [{c.ordinal}]{sectionOf(c, documentPath)}
                {c.page ? ` p. ${c.page}` : ''}
              </button>
            ))}
          </li>
        ))}
      </ul>
    </div>
  );
}

/** The passage's heading, without the document's own title in front (it is the group's name already). */
function sectionOf(c: CitationView, documentPath: string): string {
  const title = c.title?.trim();
  const file = basename(documentPath);
  // a document without a title of its own is titled by its file name (README.gz: "README")
  if (!title || title === file || title === file.replace(/\.gz$/i, '') || title === file.replace(/\.[^.]+$/, '')) return '';
  const parts = title.split(' › ');
  return ` ${parts.length > 1 ? parts.slice(1).join(' › ') : title}`;
}
