import type { Context } from 'koa';
import type { BotRecord } from '../db/bots.js';
import type { FormFields } from './form.js';
import type { ConsoleSession } from './session.js';

/** What the console's middleware puts on `ctx.state` for its pages. */
export interface ConsoleState {
  /** The signed-in session (every route but sign-in and assets has one). */
  session?: ConsoleSession;
  /** A POST's form, read (and its CSRF token checked) before the page's handler runs. */
  form?: FormFields;
  /** The bot named by `:botId`. */
  bot?: BotRecord;
}

export function consoleState(ctx: Context): ConsoleState {
  return ctx.state;
}

/** The signed-in session; the router refuses requests without one before any page runs. */
export function sessionOf(ctx: Context): ConsoleSession {
  const session = consoleState(ctx).session;
  if (!session) throw new Error('console page reached without a session');
  return session;
}

/** The submitted form of a POST (read by the router's CSRF check). */
export function formOf(ctx: Context): FormFields {
  return consoleState(ctx).form ?? new Map();
}

/** The bot named by `:botId`, loaded by the router. */
export function botOf(ctx: Context): BotRecord {
  const bot = consoleState(ctx).bot;
  if (!bot) throw new Error('console page reached without its bot');
  return bot;
}
