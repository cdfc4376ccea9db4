// The execution providers a user may ask for ('auto' tries the platform's GPU providers, then CPU;
// session.ts). No imports: the app's settings view lists these in the browser bundle.
export const PROVIDER_CHOICES = ['auto', 'cpu', 'webgpu', 'cuda', 'dml', 'coreml'] as const;
export type ProviderChoice = (typeof PROVIDER_CHOICES)[number];
