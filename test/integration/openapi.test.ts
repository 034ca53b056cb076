import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIELD_TYPES } from '../../src/domain/field-types.js';
import { CONVERSION_PARAMS } from '../../src/domain/tracker/conversion.js';
import { buildOpenApiDocument, openApiPath } from '../../src/http/openapi/document.js';
import type { ManagementDeps } from '../../src/http/routes/management-deps.js';
import { managementRouter } from '../../src/http/routes/management.js';
import { startHarness, type Harness } from '../support/harness.js';

const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;

let h: Harness;
let document: any;
beforeAll(async () => {
  h = await startHarness({ workers: false });
  const res = await h.api('GET', '/api/v1/openapi.json');
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  document = res.body;
});
afterAll(async () => {
  await h?.close();
});

/** `METHOD /path/{param}` of every operation the document describes under a prefix. */
function describedOperations(doc: any, prefix: string): string[] {
  return Object.entries(doc.paths as Record<string, Record<string, unknown>>)
    .filter(([path]) => path.startsWith(prefix))
    .flatMap(([path, item]) =>
      METHODS.filter((method) => item[method] !== undefined).map((method) => `${method.toUpperCase()} ${path}`),
    )
    .sort();
}

function newManagementRouter() {
  return managementRouter({ publicUrl: 'http://flowpost.test' } as ManagementDeps, 'key');
}

/** `METHOD /path/{param}` of every route a management router (default: a new one) really has (HEAD aside). */
function registeredOperations(router = newManagementRouter()): string[] {
  return router.stack
    .flatMap((layer) =>
      layer.methods
        .filter((method) => method !== 'HEAD')
        .map((method) => `${method} ${openApiPath(String(layer.path))}`),
    )
    .sort();
}

function parameterNames(operation: any, where: string): string[] {
  return (operation.parameters as Array<{ name: string; in: string }>)
    .filter((parameter) => parameter.in === where)
    .map((parameter) => parameter.name);
}

describe('GET /api/v1/openapi.json', () => {
  it('is answered only with the admin key', async () => {
    const response = await fetch(`${h.baseUrl}/api/v1/openapi.json`);
    expect(response.status).toBe(401);
    expect((await response.json()).error.code).toBe('unauthorized');
    const wrong = await fetch(`${h.baseUrl}/api/v1/openapi.json`, { headers: { authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(401);
  });

  it('is a valid OpenAPI 3.1 document', async () => {
    expect(document.openapi).toMatch(/^3\.1\./);
    const validator = new Validator();
    const result = await validator.validate(structuredClone(document));
    expect(result.errors ?? [], JSON.stringify(result.errors, null, 2)).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
    expect(document.servers).toEqual([{ url: h.config.publicUrl }]);
  });

  it('describes exactly the routes the management router has', () => {
    const registered = registeredOperations();
    expect(registered.length).toBeGreaterThan(30);
    expect(registered).toContain('GET /api/v1/openapi.json');
    expect(describedOperations(document, '/api/v1/')).toEqual(registered);
  });

  it('a route added without a description, or a description without a route, is caught', () => {
    const documented = describedOperations(document, '/api/v1/');
    const routed = registeredOperations();
    const router = newManagementRouter();
    router.post('/bots/:botId/undocumented', () => undefined);
    const registered = registeredOperations(router);
    expect(registered).toEqual([...routed, 'POST /api/v1/bots/{botId}/undocumented'].sort());
    expect(documented).not.toEqual(registered);
    const extra = structuredClone(document);
    extra.paths['/api/v1/bots/{botId}/nowhere'] = { get: {} };
    const described = describedOperations(extra, '/api/v1/');
    expect(described).toEqual([...documented, 'GET /api/v1/bots/{botId}/nowhere'].sort());
    expect(described).not.toEqual(routed);
  });

  it('puts every management operation behind the bearer key, and the postback routes not', () => {
    expect(document.components.securitySchemes.bearer).toEqual(
      expect.objectContaining({ type: 'http', scheme: 'bearer' }),
    );
    for (const [path, item] of Object.entries(document.paths as Record<string, Record<string, any>>)) {
      for (const method of METHODS) {
        const operation = item[method];
        if (!operation) continue;
        if (path.startsWith('/api/v1/')) {
          expect(operation.security, `${method} ${path}`).toEqual([{ bearer: [] }]);
          expect(operation.responses['401'], `${method} ${path}`).toBeDefined();
        } else {
          expect(operation.security, `${method} ${path}`).toBeUndefined();
        }
      }
    }
  });

  it("takes its request schemas from the routes' own zod schemas", () => {
    const putField = document.paths['/api/v1/bots/{botId}/fields/{key}'].put;
    const fieldBody = putField.requestBody.content['application/json'].schema;
    expect(fieldBody.properties.type.enum).toEqual([...FIELD_TYPES]);
    expect(fieldBody.required).toEqual(['name', 'type']);
    expect(fieldBody.additionalProperties).toBe(false);
    expect(parameterNames(putField, 'path')).toEqual(['botId', 'key']);

    const createBot = document.paths['/api/v1/bots'].post.requestBody.content['application/json'].schema;
    expect(Object.keys(createBot.properties).sort()).toEqual(['name', 'telegramToken', 'timezone']);
    expect(createBot.required).toEqual(['name']);

    const write = document.paths['/api/v1/bots/{botId}/dialogs/{chatId}/messages'].post.requestBody;
    expect(write.required).toBe(true);
    expect(write.content['application/json'].schema.required).toEqual(['text']);
    const release = document.paths['/api/v1/bots/{botId}/dialogs/{chatId}/release'].post.requestBody;
    expect(release.required).toBe(false);
    expect(Object.keys(release.content['application/json'].schema.properties)).toEqual(['stepId']);
    const update = document.paths['/api/v1/bots/{botId}/dialogs/{chatId}'].patch.requestBody;
    expect(Object.keys(update.content['application/json'].schema.properties)).toEqual([
      'fields',
      'addTags',
      'removeTags',
    ]);

    const deliveries = document.paths['/api/v1/bots/{botId}/deliveries'].get;
    expect(parameterNames(deliveries, 'query')).toEqual(['state', 'limit', 'before']);
  });

  it('lists the query parameters of the hand-read listings', () => {
    const dialogs = document.paths['/api/v1/bots/{botId}/dialogs'].get;
    expect(parameterNames(dialogs, 'query')).toEqual(
      expect.arrayContaining(['status', 'step', 'tag', 'q', 'limit', 'cursor', 'campaign', 'started', 'updatedSince']),
    );
    const status = dialogs.parameters.find((p: any) => p.name === 'status');
    expect(status.schema.enum).toEqual(['auto', 'manual', 'blocked']);
    expect(dialogs.parameters.find((p: any) => p.name === 'tag').schema.type).toBe('array');
    const messages = document.paths['/api/v1/bots/{botId}/dialogs/{chatId}/messages'].get;
    expect(parameterNames(messages, 'query')).toEqual(['limit', 'cursor']);
    const stats = document.paths['/api/v1/bots/{botId}/campaigns/{id}/stats'].get;
    expect(parameterNames(stats, 'query')).toEqual(['from', 'to']);
    const deleteBot = document.paths['/api/v1/bots/{botId}'].delete;
    expect(deleteBot.parameters.find((p: any) => p.name === 'confirm').required).toBe(true);
  });

  it('the dialog listing accepts the parameters it documents and refuses others', async () => {
    const bot = await h.api('POST', '/api/v1/bots', { name: 'openapi bot' });
    expect(bot.status).toBe(201);
    const listing = `/api/v1/bots/${bot.body.id}/dialogs`;
    const refused = await h.api('GET', `${listing}?nonsense=1`);
    expect(refused.status).toBe(400);
    expect(refused.body.error.code).toBe('unknown_param');
    const documented = await h.api('GET', `${listing}?status=auto&tag=a&q=x&limit=5&started=true`);
    expect(documented.status, JSON.stringify(documented.body)).toBe(200);
  });

  it('describes the postback and conversion routes with their parameters', () => {
    for (const route of ['updateDialog', 'conversion']) {
      const item = document.paths[`/api/bots/webhooks/{postbackId}/${route}`];
      expect(Object.keys(item).sort(), route).toEqual(['get', 'post']);
      expect(Object.keys(item.post.requestBody.content).sort()).toEqual([
        'application/json',
        'application/x-www-form-urlencoded',
      ]);
      expect(item.get.responses['202']).toBeDefined();
      expect(item.get.responses['503']).toBeDefined();
    }
    const updateDialog = document.paths['/api/bots/webhooks/{postbackId}/updateDialog'].get;
    expect(parameterNames(updateDialog, 'query')).toEqual(
      expect.arrayContaining(['chatId', 'clickid', 'stepId', 'status', 'tags', 'addTags', 'removeTags', 'eventId']),
    );
    expect(parameterNames(updateDialog, 'header')).toEqual(['Idempotency-Key']);
    const conversion = document.paths['/api/bots/webhooks/{postbackId}/conversion'].get;
    // Every name the conversion parser reads itself is described.
    expect(parameterNames(conversion, 'query')).toEqual(expect.arrayContaining([...CONVERSION_PARAMS]));
  });

  it('is built from the code alone: the same document twice', () => {
    expect(buildOpenApiDocument(h.config.publicUrl)).toEqual(document);
  });
});
