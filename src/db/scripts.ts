import type { Knex } from 'knex';
import type { EngineScript } from '../domain/engine/index.js';
import type { Step } from '../domain/script/index.js';

export async function loadScript(db: Knex, botId: string): Promise<EngineScript | null> {
  const [bot, steps] = await Promise.all([
    db('bots').where({ id: botId }).first('script_start'),
    db('script_steps').where({ bot_id: botId }).orderBy('position').select('id', 'definition'),
  ]);
  if (!bot?.script_start) return null;
  return {
    startKey: bot.script_start,
    steps: steps.map((row: { id: string; definition: Step }) => ({ id: row.id, step: row.definition })),
  };
}
