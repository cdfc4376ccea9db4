// What `quire fidelity` can measure, by name: kept light (the codec registry and the quality modes'
// names only) so the CLI's option table lists them without loading the engine.
import { KV_CODECS, type KvCodec } from '../../db/kv-codec.ts';
import { QUALITY_MODES } from './quality-mode-names.ts';

/** `full`: causal attention over every token (the reference); the others are quality-modes.ts'. */
export const FIDELITY_MODES = ['full', ...QUALITY_MODES] as const;
export type FidelityMode = (typeof FIDELITY_MODES)[number];

/** `none`: passage KV as computed (a cold question's); the rest are the store's codecs (db/kv-codec.ts). */
export type FidelityCodec = 'none' | KvCodec;
/** Every codec the store knows, from its registry, so a codec added there is measured too. */
export const FIDELITY_CODECS: readonly FidelityCodec[] = ['none', ...KV_CODECS];
