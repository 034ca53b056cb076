/**
 * What a broadcast sends (API.md §3): a message (a template with buttons) rendered for each
 * recipient, or a step of the script each recipient's dialog moves to. Pure: the runner reads the
 * recipients and sends.
 */
import { renderTemplate, TemplateError, type TemplateContext } from '../../templates/index.js';
import { stepCallbackData } from '../engine/callback-data.js';
import type { EffectButton } from '../engine/types.js';
import { isHttpUrl } from '../urls.js';

/** A button under a broadcast's message: a link, or a step of the script the press moves the dialog to. */
export type BroadcastButton = { text: string; url: string } | { text: string; stepId: string };

export type BroadcastContent =
  { kind: 'message'; text: string; buttons: BroadcastButton[] } | { kind: 'step'; stepId: string; stepKey: string };

export type RenderedMessage = { ok: true; text: string; buttons: EffectButton[] } | { ok: false; reason: string };

/**
 * The message for one recipient, `context` its dialog as the templates see it: the text rendered
 * for Telegram's HTML, button labels as plain text, link URLs as plain templates that must still
 * be http(s) (else the button is left out).
 */
export function renderForRecipient(
  content: Extract<BroadcastContent, { kind: 'message' }>,
  context: TemplateContext,
): RenderedMessage {
  try {
    const text = renderTemplate(content.text, 'html', context);
    if (text.trim() === '') return { ok: false, reason: 'the text rendered empty' };
    const buttons: EffectButton[] = [];
    for (const button of content.buttons) {
      const label = renderTemplate(button.text, 'plain', context);
      if ('stepId' in button) {
        buttons.push({ text: label, callbackData: stepCallbackData(button.stepId) });
        continue;
      }
      const url = renderTemplate(button.url, 'plain', context).trim();
      if (isHttpUrl(url)) buttons.push({ text: label, url });
    }
    return { ok: true, text, buttons };
  } catch (error) {
    if (error instanceof TemplateError)
      return { ok: false, reason: `the template could not be rendered: ${error.message}` };
    throw error;
  }
}
