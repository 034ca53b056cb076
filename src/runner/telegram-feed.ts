import { BotError, type Bot, type Context } from 'grammy';
import type { Update } from 'grammy/types';
import { classifyUpdate, type TelegramEvent } from '../telegram/index.js';

export type TelegramEventHandler = (event: TelegramEvent | null, ctx: Context) => Promise<void>;

const handlers = new WeakMap<object, TelegramEventHandler>();
const installed = new WeakSet<Bot>();

function install(bot: Bot): void {
  if (installed.has(bot)) return;
  installed.add(bot);
  bot.use(async (ctx) => {
    const handler = handlers.get(ctx.update);
    if (handler) await handler(classifyUpdate(ctx.update, { botUsername: ctx.me.username }), ctx);
  });
}

/**
 * Feeds one update through the bot's grammY pipeline (`bot.handleUpdate`), where it is read into a
 * TelegramEvent and given to `handler` together with grammY's context (to answer callbacks).
 */
export async function feedUpdate(bot: Bot, update: Update, handler: TelegramEventHandler): Promise<void> {
  install(bot);
  handlers.set(update, handler);
  try {
    await bot.handleUpdate(update);
  } catch (error) {
    throw error instanceof BotError ? error.error : error;
  } finally {
    handlers.delete(update);
  }
}
