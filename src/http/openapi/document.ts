// The OpenAPI 3.1 description of the management API and the postback endpoint's two routes, built
// from the zod schemas the routes validate their input with (JSON Schema 2020-12, which OpenAPI
// 3.1's Schema Object is), so that the description follows the code.
import { z } from 'zod';
import { keySchema } from '../../domain/keys.js';
import { CHAT_ID_PATTERN } from '../../domain/postback.js';
import { MANAGEMENT_OPERATIONS, type HttpMethod, type Operation } from './operations.js';
import { conversionParamsSchema, updateDialogParamsSchema } from './postback-params.js';

type JsonObject = Record<string, unknown>;

const MANAGEMENT_PREFIX = '/api/v1';

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: 'malformed input; `error.param` names the parameter at fault',
  401: 'no valid `Authorization: Bearer <ADMIN_API_KEY>` header',
  404: 'no such resource',
  409: 'conflicts with the current state',
  413: 'too large',
  422: 'well-formed but refused (an unknown step, a value of the wrong type, …)',
  429: 'over the rate limit; retry after `Retry-After` seconds',
  503: 'temporarily unable to accept the request; retry after `Retry-After` seconds',
};

/** The schema of each path parameter, by name. */
const PATH_PARAMETERS: Record<string, { schema: JsonObject; description: string }> = {
  botId: { schema: { type: 'string', format: 'uuid' }, description: "the bot's id" },
  chatId: { schema: { type: 'string', pattern: CHAT_ID_PATTERN.source }, description: 'Telegram chat id' },
  key: { schema: jsonSchema(keySchema), description: "the field's key" },
  id: { schema: { type: 'string' }, description: 'the id of the resource' },
  seq: { schema: { type: 'string', pattern: '^\\d{1,16}$' }, description: "the dead input's sequence number" },
  postbackId: { schema: { type: 'string', format: 'uuid' }, description: 'the id of one postback URL of a bot' },
};

/** `/bots/:botId` → `/bots/{botId}`. */
export function openApiPath(koaPath: string): string {
  return koaPath.replace(/:(\w+)/g, '{$1}');
}

/** A zod schema as the JSON Schema of what a caller sends (defaults optional, transforms' input). */
function jsonSchema(schema: z.ZodType): JsonObject {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, {
    target: 'draft-2020-12',
    io: 'input',
    unrepresentable: 'any',
  }) as JsonObject;
  return rest;
}

function pathParameters(path: string): JsonObject[] {
  return [...path.matchAll(/\{(\w+)\}/g)].map(([, name]) => {
    const known = PATH_PARAMETERS[name!];
    if (!known) throw new Error(`the API description has no schema for the path parameter ${name}`);
    return { name, in: 'path', required: true, description: known.description, schema: known.schema };
  });
}

/** Each property of an object schema as one query parameter (an array one is repeated: `tag=a&tag=b`). */
function queryParameters(schema: z.ZodObject): JsonObject[] {
  const object = jsonSchema(schema) as { properties?: Record<string, JsonObject>; required?: string[] };
  return Object.entries(object.properties ?? {}).map(([name, property]) => ({
    name,
    in: 'query',
    required: object.required?.includes(name) ?? false,
    ...(typeof property.description === 'string' ? { description: property.description } : {}),
    schema: property,
  }));
}

function errorResponses(statuses: Iterable<number>): JsonObject {
  const sorted = [...new Set(statuses)].sort((a, b) => a - b);
  return Object.fromEntries(
    sorted.map((status) => [String(status), { $ref: `#/components/responses/Error${status}` }]),
  );
}

function successResponse([status, description]: readonly [number, string]): JsonObject {
  if (status === 204) return { [status]: { description } };
  return { [status]: { description, content: { 'application/json': { schema: { type: 'object' } } } } };
}

function managementOperation(operation: Operation, path: string): JsonObject {
  const params = pathParameters(path);
  const errors = [401, ...(operation.errors ?? [])];
  if (params.length > 0 || operation.query || operation.body) errors.push(400);
  if (params.length > 0) errors.push(404);
  return {
    operationId: `${operation.method}${path.replace(/\{(\w+)\}/g, 'By_$1').replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase())}`,
    summary: operation.summary,
    tags: [operation.tag],
    security: [{ bearer: [] }],
    parameters: [...params, ...(operation.query ? queryParameters(operation.query) : [])],
    ...(operation.body
      ? {
          requestBody: {
            required: !operation.bodyOptional,
            content: { 'application/json': { schema: jsonSchema(operation.body) } },
          },
        }
      : {}),
    responses: { ...successResponse(operation.success), ...errorResponses(errors) },
  };
}

/** GET and POST of one postback route: the same parameters in the query and/or a form or JSON body. */
function postbackPath(summary: string, params: z.ZodObject, responses: JsonObject): JsonObject {
  const parameters = [
    ...pathParameters('{postbackId}'),
    ...queryParameters(params),
    {
      name: 'Idempotency-Key',
      in: 'header',
      required: false,
      description: 'as eventId',
      schema: { type: 'string', maxLength: 255 },
    },
  ];
  // Any other name is read too (a custom field; `fields.KEY`, `tracker.KEY`, …): the body is open.
  const body = { ...jsonSchema(params), additionalProperties: true };
  const common = { tags: ['postback'], summary, responses };
  const operationId = summary.replace(/\W+/g, '_');
  return {
    get: { ...common, operationId: `get_${operationId}`, parameters },
    post: {
      ...common,
      operationId: `post_${operationId}`,
      description: 'The same parameters in the query string and/or the body; a body value wins over the query.',
      parameters,
      requestBody: {
        required: false,
        content: { 'application/x-www-form-urlencoded': { schema: body }, 'application/json': { schema: body } },
      },
    },
  };
}

const QUEUED = {
  description: 'durably queued',
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Queued' } } },
};

function postbackPaths(): Record<string, JsonObject> {
  const refusals = errorResponses([400, 404, 413, 422, 429, 503]);
  return {
    '/api/bots/webhooks/{postbackId}/updateDialog': postbackPath(
      'Update a dialog (postback)',
      updateDialogParamsSchema,
      {
        '200': { description: 'an idempotent repeat (eventId)', content: QUEUED.content },
        '202': QUEUED,
        ...refusals,
      },
    ),
    '/api/bots/webhooks/{postbackId}/conversion': postbackPath('Record a conversion', conversionParamsSchema, {
      '200': {
        description: 'a duplicate ({ok, duplicate: true}) or a status move the rules refuse ({ok, ignored})',
        content: { 'application/json': { schema: { type: 'object' } } },
      },
      '202': QUEUED,
      ...refusals,
    }),
  };
}

const ERROR_SCHEMA = {
  type: 'object',
  required: ['ok', 'error'],
  properties: {
    ok: { const: false },
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', description: 'stable, machine-readable' },
        message: { type: 'string' },
        param: { type: 'string', description: 'the parameter at fault' },
      },
    },
  },
};

/** The whole description; `serverUrl` is PUBLIC_URL. */
export function buildOpenApiDocument(serverUrl?: string): JsonObject {
  const paths: Record<string, Partial<Record<HttpMethod, JsonObject>>> = {};
  for (const operation of MANAGEMENT_OPERATIONS) {
    const path = openApiPath(`${MANAGEMENT_PREFIX}${operation.path}`);
    const item = (paths[path] ??= {});
    if (item[operation.method]) throw new Error(`${operation.method} ${path} is described twice`);
    item[operation.method] = managementOperation(operation, path);
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'flowpost',
      version: 'v1',
      description:
        'The management API (under /api/v1, every call with `Authorization: Bearer <ADMIN_API_KEY>`) and the postback endpoint (updateDialog, conversion) of flowpost.',
    },
    ...(serverUrl ? { servers: [{ url: serverUrl }] } : {}),
    paths: { ...paths, ...postbackPaths() },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'ADMIN_API_KEY' } },
      schemas: {
        Error: ERROR_SCHEMA,
        Queued: {
          type: 'object',
          required: ['ok', 'updateId'],
          properties: { ok: { const: true }, updateId: { type: 'string' }, duplicate: { type: 'boolean' } },
        },
      },
      responses: Object.fromEntries(
        Object.entries(ERROR_DESCRIPTIONS).map(([status, description]) => [
          `Error${status}`,
          { description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
        ]),
      ),
    },
  };
}
