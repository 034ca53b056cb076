/** A template that does not compile, is refused, or exceeded a render limit. */
export class TemplateError extends Error {
  override readonly name = 'TemplateError';
  /** 1-based line in the template source, when known. */
  readonly line: number | undefined;
  /** 1-based column in the template source, when known. */
  readonly column: number | undefined;

  constructor(message: string, position?: { line: number; column?: number }) {
    const where =
      position === undefined
        ? ''
        : position.column === undefined
          ? ` (line ${position.line})`
          : ` (line ${position.line}, column ${position.column})`;
    super(message + where);
    this.line = position?.line;
    this.column = position?.column;
  }
}
