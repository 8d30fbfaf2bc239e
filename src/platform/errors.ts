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

/** One variable a configuration refuses: its name, the form it must have, what it was (secrets redacted). */
export interface InvalidVariable {
  variable: string;
  expected: string;
  got?: string;
}

/**
 * A configuration that cannot run. It names every invalid variable at once (`details.variables`),
 * so an operator fixes them in one pass; `details.variable` is the first, for callers that want one.
 */
export class ConfigError extends AppError {
  declare readonly details: { variable: string; variables: InvalidVariable[] };

  constructor(variable: string, message: string);
  constructor(variables: readonly InvalidVariable[]);
  constructor(first: string | readonly InvalidVariable[], message?: string) {
    const variables: InvalidVariable[] =
      typeof first === 'string' ? [{ variable: first, expected: message ?? '' }] : [...first];
    const text =
      typeof first === 'string'
        ? `${first}: ${message ?? ''}`
        : variables
            .map(
              (v) =>
                `${v.variable}: expected ${v.expected}${v.got === undefined ? '' : `, got ${JSON.stringify(v.got)}`}`,
            )
            .join('; ');
    super('invalid_config', text, { variable: variables[0]?.variable ?? '', variables });
    this.name = 'ConfigError';
  }
}
