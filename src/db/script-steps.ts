import type { Knex } from 'knex';
import type { EngineScript } from '../domain/engine/index.js';
import type { ConversionRule, Step } from '../domain/script/index.js';

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

/** The step of `steps` that `ref` names: its id (in any case) or its key; undefined when none does. */
export function findStepRef<T extends { id: string; key: string }>(steps: readonly T[], ref: string): T | undefined {
  return steps.find((step) => step.id === ref.toLowerCase() || step.key === ref);
}

/** The bot's script as the engine runs it; null before a script is set. */
export async function loadScript(db: Knex, botId: string): Promise<EngineScript | null> {
  const [head, steps] = await Promise.all([
    scriptHead(db, botId),
    db('script_steps').where({ bot_id: botId }).orderBy('position').select('id', 'definition'),
  ]);
  if (!head.start) return null;
  return {
    startKey: head.start,
    steps: steps.map((row: { id: string; definition: Step }) => ({ id: row.id, step: row.definition })),
    ...(head.onConversion ? { onConversion: head.onConversion } : {}),
  };
}

/** The script's start key and its conversion rules (null before a script is set / when it has none). */
export async function scriptHead(
  db: Knex,
  botId: string,
): Promise<{ start: string | null; onConversion: ConversionRule[] | null }> {
  const row = await db('bots')
    .where({ id: botId })
    .first<{ script_start: string | null; script_on_conversion: ConversionRule[] | null } | undefined>(
      'script_start',
      'script_on_conversion',
    );
  return { start: row?.script_start ?? null, onConversion: row?.script_on_conversion ?? null };
}

/** Replaces a bot's script: the given steps (with their ids already assigned) and its start step. */
export async function replaceScript(
  trx: Knex.Transaction,
  botId: string,
  start: string,
  steps: ReadonlyArray<{ id: string; key: string; definition: object }>,
  onConversion: readonly ConversionRule[] | null = null,
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
  await trx('bots')
    .where({ id: botId })
    .update({
      script_start: start,
      script_on_conversion: onConversion && onConversion.length > 0 ? JSON.stringify(onConversion) : null,
      updated_at: trx.fn.now(),
    });
}
