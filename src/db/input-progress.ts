import type { Knex } from 'knex';
import type { DialogRef } from './dialog-rows.js';
import { GroupCommit } from './group-commit.js';
import { runNamed, type NamedStatement } from './named-statement.js';

interface ProgressWrite extends DialogRef {
  seq: number;
  done: number;
  finish: boolean;
}

const WRITE_PROGRESS: NamedStatement = {
  name: 'flowpost_input_progress_v1',
  text: `
  UPDATE dialog_inputs i SET effects_done = greatest(i.effects_done, v.n), updated_at = now(),
    state = CASE WHEN v.f AND i.state IN ('pending', 'acting') THEN 'done' ELSE i.state END
  FROM jsonb_to_recordset($1::jsonb) AS v(b uuid, c bigint, s bigint, n int, f boolean)
  WHERE i.bot_id = v.b AND i.chat_id = v.c AND i.seq = v.s`,
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

  /** Effects before `done` were carried out. */
  advance(dialog: DialogRef, seq: number, done: number): Promise<null> {
    return this.group.submit({ ...dialog, seq, done, finish: false });
  }

  /** Every effect was carried out: the input is done. */
  finish(dialog: DialogRef, seq: number, done: number): Promise<null> {
    return this.group.submit({ ...dialog, seq, done, finish: true });
  }

  private async write(writes: ProgressWrite[]): Promise<null[]> {
    const rows = writes.map((w) => ({ b: w.botId, c: w.chatId, s: w.seq, n: w.done, f: w.finish }));
    await runNamed(this.db, WRITE_PROGRESS, [JSON.stringify(rows)]);
    return writes.map(() => null);
  }
}
