import type { IncomingLine } from '../db/dialog-messages.js';
import type { InputEvent } from '../domain/inputs/types.js';

type Json = Record<string, unknown>;

function asObject(value: unknown): Json | null {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : null;
}

/** The label of the pressed button, from the keyboard of the message it was under. */
function buttonLabel(message: Json | null, data: string): string | null {
  const keyboard = asObject(message?.reply_markup)?.inline_keyboard;
  if (!Array.isArray(keyboard)) return null;
  for (const row of keyboard) {
    if (!Array.isArray(row)) continue;
    for (const button of row) {
      const b = asObject(button);
      if (b?.callback_data === data && typeof b.text === 'string') return b.text;
    }
  }
  return null;
}

/**
 * What the user sent, as a transcript line: a message's text (or caption) with its Telegram id, a
 * button press as the button's label (its data when the label is not known). Null for updates
 * that are not something the user said (blocking or unblocking the bot).
 */
export function incomingLine(update: unknown, event: InputEvent): IncomingLine | null {
  const u = asObject(update);
  switch (event.kind) {
    case 'start':
    case 'text':
    case 'other': {
      const message = asObject(u?.message);
      if (!message) return null;
      const text = typeof message.text === 'string' ? message.text : message.caption;
      const id = message.message_id;
      return {
        text: typeof text === 'string' ? text : null,
        telegramMessageId: typeof id === 'number' && Number.isSafeInteger(id) ? id : null,
      };
    }
    case 'button': {
      const message = asObject(asObject(u?.callback_query)?.message);
      return { text: buttonLabel(message, event.data) ?? event.data, telegramMessageId: null };
    }
    default:
      return null;
  }
}
