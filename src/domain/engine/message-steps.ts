/** Steps that send the user a message: `send_message` and `input`. */
import { TemplateError } from '../../templates/index.js';
import type { InputStep, MessageButton, SendMessageStep } from '../script/types.js';
import { buttonCallbackData } from './callback-data.js';
import { continueWith, render, type RunState, type StepOutcome } from './run-state.js';
import type { EffectButton, EngineStep } from './types.js';
import { isHttpUrl } from '../urls.js';

/** A link button's URL: rendered as a plain template (literal when it is not one), and still http(s). */
function linkUrl(run: RunState, stored: EngineStep, source: string, index: number): string | null {
  let url: string;
  try {
    url = render(run, stored, source, 'plain').trim();
  } catch (error) {
    if (!(error instanceof TemplateError)) throw error;
    run.log.push(
      `${stored.step.key}: button ${index} url is not a usable template (${error.message}); sent as written`,
    );
    url = source.trim();
  }
  if (isHttpUrl(url)) return url;
  run.log.push(`${stored.step.key}: button ${index} dropped: its url "${url.slice(0, 200)}" is not an http(s) URL`);
  return null;
}

function effectButton(run: RunState, stored: EngineStep, button: MessageButton, index: number): EffectButton | null {
  // Telegram shows button labels as they are (no HTML parsing), so labels render as plain text.
  const text = render(run, stored, button.text, 'plain');
  if (button.next !== undefined) {
    try {
      return { text, callbackData: buttonCallbackData(stored.id, index) };
    } catch (error) {
      if (!(error instanceof RangeError)) throw error;
      run.log.push(`${stored.step.key}: button ${index} dropped: ${error.message}`);
      return null;
    }
  }
  const url = linkUrl(run, stored, button.url, index);
  return url === null ? null : { text, url };
}

export function runSendMessage(run: RunState, stored: EngineStep, step: SendMessageStep): StepOutcome {
  const text = render(run, stored, step.text, 'html');
  const definedButtons = step.buttons ?? [];
  const buttons: EffectButton[] = [];
  definedButtons.forEach((button, index) => {
    const made = effectButton(run, stored, button, index);
    if (made !== null) buttons.push(made);
  });
  run.effects.push({ type: 'send_message', stepId: stored.id, text, buttons });
  if (step.next !== undefined) return continueWith(step.next);
  if (definedButtons.some((button) => button.next !== undefined)) {
    return { kind: 'wait', stop: 'waiting_buttons', finish: true };
  }
  return continueWith(undefined);
}

/** The first half of an input step: ask. The reply is taken by the run's `text` trigger. */
export function runInputPrompt(run: RunState, stored: EngineStep, step: InputStep): StepOutcome {
  const text = render(run, stored, step.text, 'html');
  run.effects.push({ type: 'send_message', stepId: stored.id, text, buttons: [] });
  return { kind: 'wait', stop: 'waiting_input', finish: false };
}
