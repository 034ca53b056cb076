/** A refusal of client input, carrying the HTTP status and the JSON error the API answers with. */
export class InputError extends Error {
  constructor(
    readonly status: 400 | 401 | 404 | 405 | 409 | 413 | 415 | 422 | 429,
    readonly code: string,
    message: string,
    readonly param?: string,
    /** Further structured detail, e.g. every problem of a refused script. */
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'InputError';
  }
}
