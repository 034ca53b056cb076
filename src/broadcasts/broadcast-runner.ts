import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Knex } from 'knex';
import type { Logger } from '../config/log.js';
import {
  claimRecipient,
  finishIfDone,
  finishRecipients,
  findBroadcastById,
  interruptSending,
  nextRecipients,
  releaseRecipients,
  startBroadcast,
  type BroadcastRecord,
  type NextRecipient,
  type RecipientOutcome,
} from '../db/broadcasts.js';
import { blockDialog } from '../db/dialog-inputs.js';
import { insertScriptLines, type OutgoingLine } from '../db/dialog-messages.js';
import { renderForRecipient, type BroadcastContent } from '../domain/broadcasts/content.js';
import type { ChatUpdateJob } from '../jobs/dialog-update-job.js';
import { scripts } from '../redis/scripts.js';
import type { BotForRun } from '../runner/bot-cache.js';
import { TelegramSendError, type SendLimiter, type TelegramSender } from '../telegram/index.js';

export interface BroadcastRunnerDeps {
  db: Knex;
  redis: Redis;
  prefix: string;
  log: Logger;
  limiter: SendLimiter;
  sender: TelegramSender;
  bot(botId: string): Promise<BotForRun | null>;
  /** Queues a step move for a dialog (a step broadcast), in the dialog's one order. */
  queueDialogInput(job: ChatUpdateJob): Promise<string>;
  /** How long the runner's lease on a broadcast lasts without renewal (QUEUE_LOCK_MS). */
  leaseMs: number;
  /** Pending recipients read at a time (default 50); each is claimed just before its send. */
  batchSize?: number;
  /** Sends in flight at once (default 8): Telegram's round trips overlap, the rate stays the limiter's. */
  concurrency?: number;
}

/** How a run of a broadcast ended. */
export type RunEnd = 'done' | 'paused' | 'cancelled' | 'not_due' | 'busy' | 'stopped' | 'gone';

/** A recipient's transcript line: the message as Telegram acknowledged it. */
type SentLine = OutgoingLine & { chatId: number };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Sends one broadcast, from wherever it stands, until it is done, paused, cancelled or the worker
 * stops. One runner at a time holds a broadcast (a Redis lease); each recipient is claimed in
 * Postgres just before its send and leaves `pending` once, so nobody is mailed twice: a send under
 * way when a worker died is counted `interrupted`, never repeated. Sends take only the bot's spare
 * slots (SendLimiter.reserveSpare), so the dialogs' own messages go first.
 */
export async function runBroadcast(
  deps: BroadcastRunnerDeps,
  broadcastId: string,
  stopping: () => boolean,
): Promise<RunEnd> {
  const lease = await takeLease(deps, broadcastId);
  if (!lease) return 'busy';
  try {
    let broadcast = await startBroadcast(deps.db, broadcastId);
    if (!broadcast) return 'gone';
    if (broadcast.state === 'scheduled') return 'not_due';
    if (broadcast.state !== 'running') return broadcast.state === 'done' ? 'done' : broadcast.state;
    const interrupted = await interruptSending(deps.db, broadcastId);
    if (interrupted > 0) {
      deps.log.warn(
        { broadcastId, interrupted },
        'broadcast taken over: sends under way when its worker stopped are not repeated',
      );
    }
    const bot = await deps.bot(broadcast.botId);
    if (!bot?.credentials) {
      deps.log.warn({ broadcastId, botId: broadcast.botId }, 'broadcast waits: its bot has no Telegram token');
      return 'stopped';
    }
    const mustStop = () => stopping() || !lease.held();
    const batchSize = deps.batchSize ?? 50;
    const mailer = createMailer(deps, broadcast, bot);
    // The next batch is read while this one is sent (past its last chat id): the pacer never waits
    // on Postgres between batches, where a spare slot missed is lost.
    const read = (after: number | null) => {
      const reading = nextRecipients(deps.db, broadcastId, batchSize, after);
      reading.catch(() => undefined); // awaited below, or dropped when the run ends
      return reading;
    };
    let cursor: number | null = null;
    let reading = read(cursor);
    try {
      for (;;) {
        if (mustStop()) return 'stopped';
        broadcast = await findBroadcastById(deps.db, broadcastId);
        if (!broadcast) return 'gone';
        if (broadcast.state !== 'running') return broadcast.state === 'done' ? 'done' : (broadcast.state as RunEnd);
        const next = await reading;
        if (next.length === 0) {
          await mailer.drain();
          if (cursor === null) return (await finishIfDone(deps.db, broadcastId)) ? 'done' : 'stopped';
          // Once more from the start: recipients put back behind the cursor (Telegram held the bot).
          reading = read((cursor = null));
          continue;
        }
        cursor = next.at(-1)!.chatId;
        reading = read(cursor);
        await mailer.send(next, mustStop);
        if (mailer.botRefused()) {
          await mailer.drain();
          deps.log.warn(
            { broadcastId, botId: broadcast.botId },
            'Telegram refused the bot; the broadcast waits for its next run',
          );
          return 'stopped';
        }
      }
    } finally {
      await mailer.drain();
    }
  } finally {
    await lease.release();
  }
}

interface Mailer {
  /**
   * Paces a batch of pending recipients: each waits for a spare slot (a chat that must wait goes
   * to the back of the batch, the others go on), up to `concurrency` sends at once. Each is claimed
   * only once its slot is booked, just before its send: a worker killed mid-batch leaves `sending`
   * (to be counted `interrupted`) only the sends it had under way, and recipients not reached when
   * the run must stop simply stay pending. Resolves when the last is under way (or the run must
   * stop): the batch's sends still in flight overlap the next batch's.
   */
  send(batch: NextRecipient[], mustStop: () => boolean): Promise<void>;
  /** Waits for the sends in flight and writes every outcome. */
  drain(): Promise<void>;
  /** Telegram refused the bot itself (401, 404): the run must end and the bot be read afresh. */
  botRefused(): boolean;
}

/**
 * A run's sending: its sends in flight and their outcomes, written as they come in small groups,
 * behind the pacer (a write waited for in the pacer is spare slots missed).
 */
function createMailer(deps: BroadcastRunnerDeps, broadcast: BroadcastRecord, bot: BotForRun): Mailer {
  const content = broadcast.content;
  const outcomes: RecipientOutcome[] = [];
  const lines: SentLine[] = [];
  const inFlight = new Set<Promise<void>>();
  const concurrency = deps.concurrency ?? 8;
  let lastFlush = Date.now();
  let lastStateCheck = Date.now();
  let writing: Promise<void> = Promise.resolve();
  let writeError: { error: unknown } | null = null;
  const write = async (batch: RecipientOutcome[], batchLines: SentLine[]): Promise<void> => {
    await finishRecipients(deps.db, broadcast.id, batch);
    await insertScriptLines(deps.db, broadcast.botId, batchLines);
  };
  const flush = (): void => {
    const batch = outcomes.splice(0);
    const batchLines = lines.splice(0);
    lastFlush = Date.now();
    if (batch.length === 0) return;
    // One write at a time, in order; a failure ends the run at its next step.
    writing = writing.then(() =>
      write(batch, batchLines).catch((error: unknown) => {
        writeError ??= { error };
      }),
    );
  };
  const failed = (): void => {
    if (writeError) throw writeError.error;
  };

  const sendRecipient = async (recipient: NextRecipient): Promise<void> => {
    // Taken by a newer runner (this run's lease was lost and another took the broadcast): not ours.
    // Skipped: the dialog was taken over or blocked since its batch was read (settled in the claim).
    if ((await claimRecipient(deps.db, broadcast, recipient.chatId)) !== 'claimed') return;
    try {
      const outcome = await sendOne(deps, broadcast, bot, content, recipient);
      outcomes.push(outcome.outcome);
      if (outcome.line) lines.push(outcome.line);
    } catch (error) {
      // Nothing of it was sent: Telegram held the bot for long, or refused the bot itself (its
      // token revoked or changed). The recipient goes back to pending; a refused bot ends the run,
      // so that the next one reads the bot afresh instead of failing the rest of the audience.
      deps.log.warn({ err: error, broadcastId: broadcast.id, chatId: recipient.chatId }, 'broadcast send put back');
      if (error instanceof TelegramSendError && isBotRefused(error)) botRefused = true;
      await releaseRecipients(deps.db, broadcast.id, [recipient.chatId]);
    }
  };
  let botRefused = false;

  return {
    send: async (batch, mustStop) => {
      failed();
      // Who cannot be mailed is settled without a send.
      const queue: Array<{ recipient: NextRecipient; notBefore: number }> = [];
      for (const recipient of batch) {
        if (recipient.status !== 'auto' || !recipient.startedAt) {
          // Settled `skipped` by the claim, which reads the dialog again; one back in auto since
          // its batch was read is put back, and mailed on the run's next pass.
          if ((await claimRecipient(deps.db, broadcast, recipient.chatId)) === 'claimed') {
            await releaseRecipients(deps.db, broadcast.id, [recipient.chatId]);
          }
        } else {
          queue.push({ recipient, notBefore: 0 });
        }
      }
      while (queue.length > 0) {
        failed();
        if (mustStop() || botRefused) break;
        if (Date.now() - lastStateCheck > 1_000) {
          lastStateCheck = Date.now();
          const current = await findBroadcastById(deps.db, broadcast.id);
          if (current?.state !== 'running') break;
        }
        if (outcomes.length >= 50 || (outcomes.length > 0 && Date.now() - lastFlush > 200)) flush();
        if (inFlight.size >= concurrency) {
          await Promise.race(inFlight);
          continue;
        }
        const now = Date.now();
        const index = queue.findIndex((entry) => entry.notBefore <= now);
        if (index < 0) {
          await sleep(Math.max(1, Math.min(...queue.map((entry) => entry.notBefore)) - now));
          continue;
        }
        const entry = queue[index]!;
        const slot = await deps.limiter.reserveSpare(broadcast.botId, entry.recipient.chatId);
        if (!slot.booked) {
          // A hold (a 429's retry_after) may last minutes: the wait is cut in seconds, so that a
          // pause, a cancel or the worker's shutdown is still seen.
          if (slot.chatBusy) entry.notBefore = Date.now() + slot.waitMs;
          else await sleep(Math.min(slot.waitMs, 1_000));
          continue;
        }
        queue.splice(index, 1);
        // A failure (Postgres gone mid-claim) ends the run at its next step, never the process.
        const sending = sendRecipient(entry.recipient)
          .catch((error: unknown) => {
            writeError ??= { error };
          })
          .finally(() => inFlight.delete(sending));
        inFlight.add(sending);
      }
      // Stopped (a pause, a cancel, the worker's shutdown): the rest of the queue was never claimed, it stays pending.
    },
    drain: async () => {
      await Promise.all(inFlight);
      flush();
      await writing;
      failed();
    },
    botRefused: () => botRefused,
  };
}

/** Sends (or, for a step broadcast, queues) one recipient's message; throws when it must be put back. */
async function sendOne(
  deps: BroadcastRunnerDeps,
  broadcast: BroadcastRecord,
  bot: BotForRun,
  content: BroadcastContent,
  recipient: NextRecipient,
): Promise<{ outcome: RecipientOutcome; line?: SentLine }> {
  const { chatId } = recipient;
  if (content.kind === 'step') {
    await deps.queueDialogInput({
      botId: broadcast.botId,
      chatId,
      patch: { stepId: content.stepId, stepKey: content.stepKey },
    });
    return { outcome: { chatId, state: 'sent' } };
  }
  const rendered = renderForRecipient(content, {
    chatId,
    username: recipient.username,
    name: recipient.name,
    createdAt: recipient.startedAt,
    stepId: recipient.stepId,
    stepKey: recipient.stepKey,
    status: recipient.status ?? 'auto',
    fields: recipient.fields,
    tracker: recipient.tracker,
  });
  if (!rendered.ok) return { outcome: { chatId, state: 'failed', error: rendered.reason } };
  try {
    const result = await deps.sender.sendMessage(bot.credentials!, chatId, rendered.text, rendered.buttons, {
      firstSlotReserved: true,
    });
    if (!result.ok) {
      await blockDialog(deps.db, { botId: broadcast.botId, chatId }, recipient.lastSeq);
      return { outcome: { chatId, state: 'blocked', error: result.reason } };
    }
    const first = result.messageIds[0] ?? null;
    return {
      outcome: { chatId, state: 'sent', telegramMessageId: first },
      ...(first !== null ? { line: { chatId, text: rendered.text, telegramMessageId: first } } : {}),
    };
  } catch (error) {
    if (!(error instanceof TelegramSendError)) throw error;
    const partly = error.sentMessageIds.length > 0;
    // Nothing went: put back (a long hold, or the bot itself refused). Part of a long text went:
    // never sent again (at most once), counted failed with what went.
    if (!partly && (error.retryAfterMs !== undefined || isBotRefused(error))) throw error;
    const first = error.sentMessageIds[0];
    return {
      outcome: {
        chatId,
        state: 'failed',
        error: `${partly ? `sent ${error.sentMessageIds.length} part(s), then ` : ''}${error.errorCode ?? 'network'}: ${error.description}`,
        ...(first !== undefined ? { telegramMessageId: first } : {}),
      },
    };
  }
}

/** Telegram refused the bot itself (its token revoked, or no longer this bot's): no recipient is at fault. */
function isBotRefused(error: TelegramSendError): boolean {
  return error.errorCode === 401 || error.errorCode === 404;
}

interface Lease {
  held(): boolean;
  release(): Promise<void>;
}

/** The broadcast's one runner: a Redis key renewed every third of its life while the run goes on. */
async function takeLease(deps: BroadcastRunnerDeps, broadcastId: string): Promise<Lease | null> {
  const key = `${deps.prefix}:broadcast-lease:${broadcastId}`;
  const owner = randomUUID();
  const taken = await deps.redis.set(key, owner, 'PX', deps.leaseMs, 'NX');
  if (taken !== 'OK') return null;
  let held = true;
  const timer = setInterval(
    () => {
      scripts.extendLock.run(deps.redis, [key], [owner, String(deps.leaseMs)]).then(
        (extended) => {
          if (Number(extended) !== 1) held = false;
        },
        (error: unknown) => deps.log.warn({ err: error, broadcastId }, 'could not renew the broadcast lease'),
      );
    },
    Math.max(100, Math.floor(deps.leaseMs / 3)),
  );
  timer.unref();
  return {
    held: () => held,
    release: async () => {
      clearInterval(timer);
      await scripts.releaseLock.run(deps.redis, [key], [owner]).catch(() => undefined);
    },
  };
}
