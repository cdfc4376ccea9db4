// The execution-provider choices, in a file of their own so that code which only names them (the
// command line's option table, its --help) does not load onnxruntime-node.
export type ProviderChoice = 'auto' | 'cpu' | 'webgpu' | 'cuda' | 'dml' | 'coreml';
export const PROVIDER_CHOICES: readonly ProviderChoice[] = ['auto', 'cpu', 'webgpu', 'cuda', 'dml', 'coreml'];
