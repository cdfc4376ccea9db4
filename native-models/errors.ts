// Errors the engine raises for models and prompts it cannot handle; messages say what is wrong and where.

export class ModelLoadError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ModelLoadError';
  }
}

export class PromptTooLongError extends Error {
  constructor(
    readonly tokens: number,
    readonly maxPositions: number,
  ) {
    super(`prompt of ${tokens} tokens does not fit the model's ${maxPositions} positions (max_position_embeddings)`);
    this.name = 'PromptTooLongError';
  }
}
