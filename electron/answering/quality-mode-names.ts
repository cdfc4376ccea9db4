// How passage blocks are computed (quality-modes.ts says what each does). No imports: the app's
// settings view and the CLI list these without loading the engine.
export const QUALITY_MODES = ['shared-prefix', 'isolated'] as const;
export type QualityMode = (typeof QUALITY_MODES)[number];
