/** A small spinning ring; `label` is what a screen reader hears. */
export function Spinner({ label }: { label: string }) {
  return <span className="spinner" role="img" aria-label={label} />;
}
