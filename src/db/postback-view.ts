import type { Knex } from 'knex';
import type { BotPostbackView } from '../domain/postback.js';
import { listFields } from './bots.js';
import { listStepRefs } from './script-steps.js';

/** What the web tier needs to accept a postback for one endpoint. */
export interface EndpointView {
  endpointId: string;
  botId: string;
  rateLimit: number | null;
}

export async function loadEndpointView(db: Knex, endpointId: string): Promise<EndpointView | null> {
  const row = await db('postback_endpoints').where({ id: endpointId }).first('id', 'bot_id', 'rate_limit');
  return row ? { endpointId: row.id, botId: row.bot_id, rateLimit: row.rate_limit } : null;
}

export async function loadBotPostbackView(db: Knex, botId: string): Promise<BotPostbackView> {
  const [fields, steps] = await Promise.all([listFields(db, botId), listStepRefs(db, botId)]);
  const stepIdByRef = new Map<string, string>();
  const stepKeyById = new Map<string, string>();
  for (const step of steps) {
    stepIdByRef.set(step.id, step.id);
    stepIdByRef.set(step.key, step.id);
    stepKeyById.set(step.id, step.key);
  }
  return { fields: new Map(fields.map((field) => [field.key, field])), stepIdByRef, stepKeyById };
}
