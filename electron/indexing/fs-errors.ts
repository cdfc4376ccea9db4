// Short, stable descriptions of file-system errors for walk problems and parse failures.

/** The errno code ("EACCES", "ENOENT", ...) when there is one, else the message. */
export function errorCode(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code ?? (error instanceof Error ? error.message : String(error));
}
