/** `send_webhook`: render the request; the I/O layer delivers it. */
import { headerSafeText, type TemplateMode } from '../../templates/index.js';
import { bodyMode } from '../script/template-sources.js';
import type { SendWebhookStep } from '../script/types.js';
import { continueWith, render, type RunState, type StepOutcome } from './run-state.js';
import type { EngineStep } from './types.js';

/**
 * Renders a webhook request's URL, headers and body (none for GET) with `render`: a Send Webhook
 * step's, or a destination's. Header values render in `header` mode: a value that is not
 * printable ASCII (`Иван`, an emoji, a line break) is inserted as percent-encoded UTF-8, so it
 * can neither be refused by the HTTP client nor split the header.
 */
export function renderWebhookRequest(
  request: { method: string; url: string; headers?: Record<string, string>; body?: string | null },
  render: (source: string, mode: TemplateMode) => string,
): { url: string; headers: Record<string, string>; body: string | null } {
  return {
    url: render(request.url, 'url'),
    headers: Object.fromEntries(
      Object.entries(request.headers ?? {}).map(([name, value]) => [name, headerSafeText(render(value, 'header'))]),
    ),
    body:
      request.method === 'GET' || request.body === undefined || request.body === null
        ? null
        : render(request.body, bodyMode(request.body)),
  };
}

export function runSendWebhook(run: RunState, stored: EngineStep, step: SendWebhookStep): StepOutcome {
  const rendered = renderWebhookRequest(step, (source, mode) => render(run, stored, source, mode));
  run.effects.push({ type: 'send_webhook', stepId: stored.id, method: step.method, ...rendered });
  return continueWith(step.next);
}
