import type { Knex } from 'knex';
import type { EngineScript } from '../domain/engine/index.js';
import type { Step } from '../domain/script/index.js';

export interface StoredStep {
  id: string;
  key: string;
  position: number;
  definition: Record<string, unknown>;
}

export async function listSteps(db: Knex, botId: string): Promise<StoredStep[]> {
  return db('script_steps').where({ bot_id: botId }).orderBy('position').select('id', 'key', 'position', 'definition');
}

export async function listStepRefs(db: Knex, botId: string): Promise<Array<{ id: string; key: string }>> {
  return db('script_steps').where({ bot_id: botId }).select('id', 'key');
}

/** The key of the bot's start step, or null before a script is set. */
export async function scriptStart(db: Knex, botId: string): Promise<string | null> {
  const row: { script_start: string | null } | undefined = await db('bots').where({ id: botId }).first('script_start');
  return row?.script_start ?? null;
}

/** The bot's script as the engine runs it; null before a script is set. */
export async function loadScript(db: Knex, botId: string): Promise<EngineScript | null> {
  const [startKey, steps] = await Promise.all([
    scriptStart(db, botId),
    db('script_steps').where({ bot_id: botId }).orderBy('position').select('id', 'definition'),
  ]);
  if (!startKey) return null;
  return {
    startKey,
    steps: steps.map((row: { id: string; definition: Step }) => ({ id: row.id, step: row.definition })),
  };
}

/** Replaces a bot's script: the given steps (with their ids already assigned) and its start step. */
export async function replaceScript(
  trx: Knex.Transaction,
  botId: string,
  start: string,
  steps: ReadonlyArray<{ id: string; key: string; definition: object }>,
): Promise<void> {
  await trx('script_steps')
    .where({ bot_id: botId })
    .whereNotIn(
      'id',
      steps.map((s) => s.id),
    )
    .delete();
  if (steps.length > 0) {
    await trx('script_steps')
      .insert(
        steps.map((s, position) => ({
          id: s.id,
          bot_id: botId,
          key: s.key,
          position,
          definition: JSON.stringify(s.definition),
        })),
      )
      .onConflict('id')
      .merge(['key', 'position', 'definition']);
  }
  await trx('bots').where({ id: botId }).update({ script_start: start, updated_at: trx.fn.now() });
}
