import { settleCalls, watchApplied } from './lib/applied.js';
import { accepted, drive, statusCounts } from './lib/load.js';
import { fmt, type Scenario } from './lib/report.js';
import { startStack } from './lib/stack.js';

/** Postbacks sent while Redis is full; each goes to a dialog of its own, so each move is told apart. */
const POSTBACKS = 300;
const WARM_UP = 200;
/** How far above its use at the moment Redis' maxmemory is set. */
const HEADROOM_BYTES = 64 * 1024;

/**
 * Redis at maxmemory with noeviction (set just above its use): postbacks are answered 503 and
 * nothing is half-written: once the limit is raised, sending the same postbacks again (same
 * eventIds) applies each exactly once: its trace in Postgres, one journaled move, one Send Webhook call.
 */
export const redisFull: Scenario = {
  name: 'redis-full',
  fault: 'Redis at maxmemory (noeviction), then the limit raised and the same eventIds sent again',
  run: async (short) => {
    const postbacks = short ? 100 : POSTBACKS;
    const stack = await startStack({ name: 'redis-full', workers: 1, dialogs: WARM_UP + postbacks });
    const redis = stack.redis.client();
    try {
      const watch = watchApplied(stack);
      // Warm-up: the workers and caches have done their first work, the queues exist.
      const warm = await drive(stack.base, {
        rate: 100,
        durationMs: (WARM_UP * 1000) / 100,
        path: (i) => stack.postback(i, i),
      });
      await watch.waitFor(
        warm.filter(accepted).map((s) => s.i),
        30_000,
      );
      await settleCalls(stack, 1_000, 20_000);
      const callsBefore = stack.target.calls.length;

      const used = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1]);
      await redis.config('SET', 'maxmemory-policy', 'noeviction');
      await redis.config('SET', 'maxmemory', String(used + HEADROOM_BYTES));
      const n0 = WARM_UP;
      const path = (i: number) => stack.postback(n0 + i, WARM_UP + i);
      const full = await drive(stack.base, { rate: 100, durationMs: (postbacks * 1000) / 100, path });
      const usedWhenFull = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1]);
      await redis.config('SET', 'maxmemory', '0');
      const again = await drive(stack.base, { rate: 100, durationMs: (postbacks * 1000) / 100, path });

      const ns = Array.from({ length: postbacks }, (_, i) => n0 + i);
      const missing = await watch.waitFor(ns, 30_000);
      const chats = ns.map((_, i) => stack.chatOf(WARM_UP + i));
      // A run whose wake-up Redis refused is picked up by the dialog sweeper (an open input untouched
      // for QUEUE_LOCK_MS): wait for every move to be handled before counting the calls it made.
      const openInputs = async () =>
        Number(
          (
            await stack
              .db('dialog_inputs')
              .where({ bot_id: stack.botId })
              .whereIn('chat_id', chats)
              .whereIn('state', ['pending', 'acting'])
              .count<Array<{ count: string }>>({ count: '*' })
          )[0]?.count ?? 0,
        );
      const openDeadline = Date.now() + 60_000;
      while ((await openInputs()) > 0 && Date.now() < openDeadline) await new Promise((r) => setTimeout(r, 250));
      const stillOpen = await openInputs();
      await settleCalls(stack, 3_000, 30_000);
      await watch.stop();

      const moves = await stack
        .db('dialog_inputs')
        .where({ bot_id: stack.botId, kind: 'move' })
        .whereIn('chat_id', chats)
        .select('chat_id')
        .count<Array<{ chat_id: string; count: string }>>({ count: '*' })
        .groupBy('chat_id');
      const movesOf = new Map(moves.map((m) => [Number(m.chat_id), Number(m.count)]));
      const calls = stack.target.calls.slice(callsBefore);
      const callIdsOf = new Map<number, Set<string>>();
      for (const call of calls) {
        if (!callIdsOf.has(call.n)) callIdsOf.set(call.n, new Set());
        callIdsOf.get(call.n)!.add(call.webhookId);
      }
      const twiceMoved = chats.filter((chat) => (movesOf.get(chat) ?? 0) > 1).length;
      const notMoved = chats.filter((chat) => (movesOf.get(chat) ?? 0) === 0).length;
      const twiceCalled = ns.filter((n) => (callIdsOf.get(n)?.size ?? 0) > 1).length;
      const notCalled = ns.filter((n) => (callIdsOf.get(n)?.size ?? 0) === 0).length;
      // A call recorded while Redis refused its job waits for the stranded-deliveries sweeper (10 min).
      const [stranded] = await stack
        .db('deliveries')
        .where({ bot_id: stack.botId, state: 'pending' })
        .whereIn('chat_id', chats)
        .count<Array<{ count: string }>>({ count: '*' });
      const waiting = Number(stranded?.count ?? 0);
      // A first 2xx means queued: the resend must be the idempotent repeat, never a second acceptance.
      const acceptedTwice = full.filter((s, i) => accepted(s) && again[i]?.status === 202).length;

      const failures: string[] = [];
      const badFull = full.filter((s) => !accepted(s) && s.status !== 503);
      if (badFull.length > 0)
        failures.push(`while full, ${badFull.length} answers other than 2xx/503 (${statusCounts(full)})`);
      if (full.filter((s) => s.status === 503).length === 0)
        failures.push('Redis never refused a write: no 503 while full');
      const badAgain = again.filter((s) => !accepted(s));
      if (badAgain.length > 0)
        failures.push(`after raising the limit, ${badAgain.length} resends not 2xx (${statusCounts(again)})`);
      if (missing.length > 0)
        failures.push(
          `${missing.length} postbacks never applied after the resend (half-written: first ${statusCounts(full.filter((s) => missing.includes(n0 + s.i)))}, resend ${statusCounts(again.filter((s) => missing.includes(n0 + s.i)))})`,
        );
      if (twiceMoved > 0 || twiceCalled > 0 || acceptedTwice > 0)
        failures.push(
          `applied more than once: ${twiceMoved} dialogs moved twice, ${twiceCalled} postbacks with 2+ Send Webhook calls, ${acceptedTwice} accepted twice`,
        );
      if (stillOpen > 0) failures.push(`${stillOpen} moves still not handled a minute after the resend`);
      if (notMoved > 0 || notCalled > waiting)
        failures.push(
          `${notMoved} moves not journaled, ${notCalled - waiting} Send Webhook calls neither received nor pending`,
        );
      return {
        name: 'redis-full',
        summary: `while full: ${statusCounts(full)}; resend: ${statusCounts(again)}; ${missing.length} not applied, ${twiceMoved + twiceCalled + acceptedTwice} applied twice`,
        figures: [
          [
            'Redis maxmemory',
            `${fmt(used + HEADROOM_BYTES)} bytes (use ${fmt(used)} + ${fmt(HEADROOM_BYTES)}); ${fmt(usedWhenFull)} used after the full phase`,
          ],
          ['answers while full', statusCounts(full)],
          ['answers to the same eventIds after raising the limit', statusCounts(again)],
          ['postbacks not applied', `${missing.length} of ${postbacks}`],
          ['first 2xx then 202 again (accepted twice)', String(acceptedTwice)],
          ['dialogs whose move was journaled 0 / 2+ times', `${notMoved} / ${twiceMoved}`],
          ['postbacks with 0 / 2+ Send Webhook calls', `${notCalled} / ${twiceCalled}`],
          [
            'calls recorded but pending (their job refused while full; re-queued by the 10-min sweeper)',
            String(waiting),
          ],
        ],
        failures,
      };
    } finally {
      redis.disconnect();
      await stack.close();
    }
  },
};
