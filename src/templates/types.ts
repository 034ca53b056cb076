/** Where a rendered template lands; decides how every value is encoded. */
export type TemplateMode = 'plain' | 'html' | 'url' | 'json' | 'header';

export const TEMPLATE_MODES: readonly TemplateMode[] = ['plain', 'html', 'url', 'json', 'header'];

/** A custom/tracker field value as stored on a dialog. */
export type FieldValue = string | number | boolean | string[] | null;

/** The dialog data a template is rendered against. */
export interface TemplateContext {
  chatId: number | string;
  username?: string | null;
  /** User's first (+ last) name. */
  name?: string | null;
  /** Dialog start; rendered as ISO 8601 UTC with milliseconds. */
  createdAt?: Date | string | null;
  stepKey?: string | null;
  stepId?: string | null;
  status?: string | null;
  /** Custom fields; values are normally {@link FieldValue}s. */
  fields: Record<string, unknown>;
  /** Tracker fields (clickid, sub ids, ...). */
  tracker: Record<string, unknown>;
  /** The conversion a run handles: status, payout, currency, event, tid, clickid. */
  conversion?: Record<string, unknown>;
  /** A destination's values (`{clickid}`, `{click.fbc}`, …), rendered as `{{destination.*}}`. */
  destination?: Record<string, unknown>;
}

export interface CompiledTemplate {
  readonly source: string;
  readonly mode: TemplateMode;
  /** Renders the template; throws TemplateError if the render exceeds its limits. */
  render(ctx: TemplateContext): string;
}
