/** A failure with a stable, machine-readable code. Callers branch on `code`, never on text. */
export class AppError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'AppError';
  }
}

export class ConfigError extends AppError {
  constructor(variable: string, message: string) {
    super('invalid_config', `${variable}: ${message}`, { variable });
    this.name = 'ConfigError';
  }
}
