// How a prompt attends: 'block' (blocks prefilled alone, re-encoded, final block only) or 'full' (one
// causal prefill of everything, the reference). No imports: the app's settings view lists these.
export const ATTENTION_MODES = ['block', 'full'] as const;
export type AttentionMode = (typeof ATTENTION_MODES)[number];
