import { type PathSegment, stepPath } from './problem-path.js';
import type { ParsedStep } from './step-schemas.js';
import type { TemplateMode } from './types.js';

export interface TemplateSource {
  path: string;
  source: string;
  mode: TemplateMode;
}

/** A webhook body is a JSON template when it looks like JSON, otherwise plain text. */
export function bodyMode(body: string): TemplateMode {
  const trimmed = body.trim();
  return trimmed.startsWith('{') || trimmed.startsWith('[') ? 'json' : 'plain';
}

/** Every template-bearing text of a step, with the mode it is rendered in. */
export function templateSources(step: ParsedStep, index: number): TemplateSource[] {
  const sources: TemplateSource[] = [];
  const add = (source: string, mode: TemplateMode, ...path: PathSegment[]) =>
    sources.push({ path: stepPath(index, ...path), source, mode });
  switch (step.type) {
    case 'send_message':
      add(step.text, 'html', 'text');
      (step.buttons ?? []).forEach((button, i) => add(button.text, 'html', 'buttons', i, 'text'));
      break;
    case 'send_webhook':
      add(step.url, 'url', 'url');
      if (step.body !== undefined) add(step.body, bodyMode(step.body), 'body');
      for (const [name, value] of Object.entries(step.headers ?? {})) add(value, 'plain', 'headers', name);
      break;
    case 'input':
      add(step.text, 'html', 'text');
      break;
    default:
      break;
  }
  return sources;
}
