import type { Knex } from 'knex';
import type { OutgoingLine } from './dialog-messages.js';
import type { DialogRef } from './dialog-rows.js';
import { GroupCommit } from './group-commit.js';
import { runNamed, type NamedStatement } from './named-statement.js';

interface ProgressWrite extends DialogRef {
  seq: number;
  done: number;
  finish: boolean;
  sent: readonly OutgoingLine[];
}

// Written with how far the input got: the messages Telegram acknowledged for the effects it passed
// (the transcript's script lines), only if this write moves the input past them. A retry resumes
// after them, so they are neither sent nor recorded twice.
const WRITE_PROGRESS: NamedStatement = {
  name: 'flowpost_input_progress_v3',
  text: `
  WITH v AS MATERIALIZED (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS v(b uuid, c bigint, s bigint, n int, f boolean, m jsonb)
  ), cur AS (
    SELECT i.bot_id, i.chat_id, i.seq, i.effects_done FROM dialog_inputs i JOIN v ON i.bot_id = v.b AND i.chat_id = v.c AND i.seq = v.s
    FOR UPDATE OF i
  ), u AS (
    UPDATE dialog_inputs i SET effects_done = greatest(i.effects_done, v.n), updated_at = now(),
      state = CASE WHEN v.f AND i.state IN ('pending', 'acting') THEN 'done' ELSE i.state END
    FROM v JOIN cur ON cur.bot_id = v.b AND cur.chat_id = v.c AND cur.seq = v.s
    WHERE i.bot_id = v.b AND i.chat_id = v.c AND i.seq = v.s
  )
  INSERT INTO dialog_messages (bot_id, chat_id, direction, sender, text, telegram_message_id)
  SELECT v.b, v.c, 'out', coalesce(x.e->>'s', 'script'), x.e->>'t', (x.e->>'id')::bigint
  FROM v JOIN cur ON cur.bot_id = v.b AND cur.chat_id = v.c AND cur.seq = v.s AND cur.effects_done < v.n
  CROSS JOIN LATERAL jsonb_array_elements(v.m) WITH ORDINALITY AS x(e, o)
  WHERE v.m IS NOT NULL
  ORDER BY v.b, v.c, v.s, x.o`,
};

/**
 * How far acting inputs got, written for many dialogs at once: while one statement is in flight
 * the next writes gather (group commit). Each caller still waits until its own write is durable.
 */
export class InputProgressWriter {
  private readonly group: GroupCommit<ProgressWrite, null>;

  constructor(private readonly db: Knex) {
    this.group = new GroupCommit((writes) => this.write(writes), 500);
  }

  /** Effects before `done` were carried out; `sent`: the messages Telegram acknowledged for the last of them. */
  advance(dialog: DialogRef, seq: number, done: number, sent: readonly OutgoingLine[] = []): Promise<null> {
    return this.group.submit({ ...dialog, seq, done, finish: false, sent });
  }

  /** Every effect was carried out: the input is done (`sent` as for `advance`). */
  finish(dialog: DialogRef, seq: number, done: number, sent: readonly OutgoingLine[] = []): Promise<null> {
    return this.group.submit({ ...dialog, seq, done, finish: true, sent });
  }

  private async write(writes: ProgressWrite[]): Promise<null[]> {
    const rows = writes.map((w) => ({
      b: w.botId,
      c: w.chatId,
      s: w.seq,
      n: w.done,
      f: w.finish,
      m:
        w.sent.length > 0
          ? w.sent.map((line) => ({
              t: line.text,
              id: line.telegramMessageId,
              ...(line.sender ? { s: line.sender } : {}),
            }))
          : null,
    }));
    await runNamed(this.db, WRITE_PROGRESS, [JSON.stringify(rows)]);
    return writes.map(() => null);
  }
}
