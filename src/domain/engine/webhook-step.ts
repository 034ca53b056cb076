/** `send_webhook`: render the request; the I/O layer delivers it. */
import { bodyMode } from '../script/template-sources.js';
import type { SendWebhookStep } from '../script/types.js';
import { continueWith, render, type RunState, type StepOutcome } from './run-state.js';
import type { EngineStep } from './types.js';

// A rendered value (a user's name, say) must not split or end a header.
const HEADER_BREAKS = /[\r\n\0]+/g;

export function runSendWebhook(run: RunState, stored: EngineStep, step: SendWebhookStep): StepOutcome {
  const url = render(run, stored, step.url, 'url');
  const headers = Object.fromEntries(
    Object.entries(step.headers ?? {}).map(([name, value]) => [
      name,
      render(run, stored, value, 'plain').replace(HEADER_BREAKS, ' '),
    ]),
  );
  const body =
    step.method === 'GET' || step.body === undefined ? null : render(run, stored, step.body, bodyMode(step.body));
  run.effects.push({ type: 'send_webhook', stepId: stored.id, method: step.method, url, headers, body });
  return continueWith(step.next);
}
