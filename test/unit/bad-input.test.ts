import { describe, expect, it } from 'vitest';
import { emptyDialogState, type DialogState } from '../../src/domain/dialog.js';
import { applyScriptChanges, mergeUpdates } from '../../src/domain/dialog-merge.js';
import { renderWebhookRequest } from '../../src/domain/engine/webhook-step.js';
import { DomainError } from '../../src/domain/errors.js';
import {
  MAX_DIALOG_FIELDS,
  MAX_DIALOG_TAGS,
  MAX_DIALOG_TRACKER_FIELDS,
  MAX_POSTBACK_PARAMS,
} from '../../src/domain/limits.js';
import { parsePostback, type PostbackInput } from '../../src/domain/postback.js';
import { destinationRequests, type Destination } from '../../src/domain/tracker/destinations.js';
import { parseBody } from '../../src/http/validation.js';
import { deliveryHeaders } from '../../src/outbound/delivery/headers.js';
import { requestPath, validateDeliveryRequest } from '../../src/outbound/delivery/request-validation.js';
import { renderTemplate, type TemplateContext } from '../../src/templates/index.js';
import { z } from 'zod';

const context = (fields: Record<string, unknown>): TemplateContext => ({ chatId: 42, fields, tracker: {} });
const renderFor = (fields: Record<string, unknown>) => (source: string, mode: Parameters<typeof renderTemplate>[1]) =>
  renderTemplate(source, mode, context(fields));

// What undici accepts in a header value (its headerCharRegex): tab, printable ASCII and 0x80-0xFF.
const UNDICI_REFUSES = /[^\t\x20-\x7e\x80-\xff]/;

function refusal(run: () => unknown): DomainError {
  try {
    run();
  } catch (error) {
    if (error instanceof DomainError) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

describe('header values', () => {
  it('a non-Latin-1 value is sent as percent-encoded UTF-8, which the HTTP client accepts and the receiver decodes back', () => {
    const request = { method: 'GET', url: 'https://t.example/', headers: { 'X-Name': '{{fields.who}}' } };
    for (const who of ['Иван', 'Zoë 😀', 'a\u{10FFFF}b']) {
      const { headers } = renderWebhookRequest(request, renderFor({ who }));
      expect(headers['X-Name']).not.toMatch(UNDICI_REFUSES);
      expect(decodeURIComponent(headers['X-Name']!)).toBe(who);
    }
    expect(renderWebhookRequest(request, renderFor({ who: 'Иван' })).headers['X-Name']).toBe(
      '%D0%98%D0%B2%D0%B0%D0%BD',
    );
  });

  it('a printable ASCII value is sent as it is, and a line break in a value can never start another header', () => {
    const request = {
      method: 'GET',
      url: 'https://t.example/',
      headers: { Authorization: 'Bearer {{fields.token}}', 'X-A': '{{fields.a}}', 'X-B': '{{fields.b}}' },
    };
    const { headers } = renderWebhookRequest(
      request,
      renderFor({ token: 'abc%20.def=', a: 'x\r\nX-Evil: 1', b: 'Иван\r\nX-Evil: 1' }),
    );
    expect(headers.Authorization).toBe('Bearer abc%20.def=');
    expect(headers['X-A']).toBe('x X-Evil: 1');
    expect(headers['X-B']).toBe('%D0%98%D0%B2%D0%B0%D0%BD%20X-Evil%3A%201');
    for (const value of Object.values(headers)) expect(value).not.toMatch(/[\r\n\0]/);
    expect(validateDeliveryRequest({ method: 'GET', url: 'https://t.example/', headers }).ok).toBe(true);
  });

  it("the template's own non-ASCII text is percent-encoded too", () => {
    const { headers } = renderWebhookRequest(
      { method: 'GET', url: 'https://t.example/', headers: { 'X-Greeting': 'Привет {{fields.n}}' } },
      renderFor({ n: 'Bob' }),
    );
    expect(headers['X-Greeting']).toBe('%D0%9F%D1%80%D0%B8%D0%B2%D0%B5%D1%82 Bob');
  });

  it("a destination's header templates follow the same rule", () => {
    const destination: Destination = {
      id: 'd1',
      on: ['click.claimed'],
      campaigns: null,
      statuses: null,
      method: 'GET',
      url: 'https://t.example/p?c={clickid}',
      headers: { 'x-campaign': '{campaign}', 'x-name': '{{name}}' },
      body: null,
    };
    const [request] = destinationRequests(
      [destination],
      { kind: 'click.claimed', clickid: 'k1', campaignId: null, campaign: 'Весна', click: {} },
      { chatId: 1, name: 'Иван\nX', fields: {}, tracker: {} },
    );
    expect(request!.headers).toEqual({
      'x-campaign': '%D0%92%D0%B5%D1%81%D0%BD%D0%B0',
      'x-name': '%D0%98%D0%B2%D0%B0%D0%BD%20X',
    });
  });

  it('a value recorded before values were encoded is percent-encoded when sent, not refused', () => {
    const headers = deliveryHeaders(
      { messageId: 'msg_1', headers: { 'X-Name': 'Иван' }, body: null },
      null,
      'flowpost',
      new Date(),
    );
    expect(headers['X-Name']).toBe('%D0%98%D0%B2%D0%B0%D0%BD');
  });
});

describe('dot segments in a URL template', () => {
  const template = 'https://x.example/leads/{{fields.id}}/convert?note={{fields.note}}';
  const sent = (fields: Record<string, unknown>, source = template) => {
    const rendered = renderTemplate(source, 'url', context(fields));
    const checked = validateDeliveryRequest({ method: 'GET', url: rendered });
    if (!checked.ok) throw new Error(checked.reason);
    return { rendered, path: requestPath(checked.url) };
  };

  it('a value ".." or "." stays a literal segment of the path sent', () => {
    expect(sent({ id: '..', note: 'x' })).toEqual({
      rendered: 'https://x.example/leads/%2E%2E/convert?note=x',
      path: '/leads/%2E%2E/convert?note=x',
    });
    expect(sent({ id: '.' }).path).toBe('/leads/%2E/convert?note=');
    // The URL Standard reads "%2E%2E" as ".." too: the path must not be taken from its parse alone.
    expect(new URL(sent({ id: '..' }).rendered).pathname).toBe('/convert');
  });

  it('a value that makes a dot segment with literal text beside it stays literal as well', () => {
    expect(sent({ id: '.' }, 'https://x.example/leads/.{{fields.id}}/convert').path).toBe('/leads/.%2E/convert');
  });

  it('other values, and dots in the query or the host, are unchanged', () => {
    expect(sent({ id: 'a.b', note: '12.50' }).path).toBe('/leads/a.b/convert?note=12.50');
    expect(sent({ id: 'a/../b' }).path).toBe('/leads/a%2F..%2Fb/convert?note=');
    expect(sent({ id: '...' }).path).toBe('/leads/%2E%2E%2E/convert?note=');
    expect(sent({}, 'https://x.example/a/../b').path).toBe('/b');
  });
});

describe('text Postgres cannot store, in the management API', () => {
  const schema = z.strictObject({ name: z.string(), fields: z.record(z.string(), z.string()).optional() });

  it('is refused naming where it is', () => {
    const nul = refusal(() => parseBody(schema, { name: 'a\u0000b' }));
    expect(nul).toMatchObject({ kind: 'invalid', code: 'invalid_body', param: 'name' });
    expect(nul.message).toBe('name: must not contain U+0000');
    const nested = refusal(() => parseBody(schema, { name: 'ok', fields: { source: '\ud800' } }));
    expect(nested.message).toBe('fields.source: is not valid Unicode (an unpaired surrogate)');
    const key = refusal(() => parseBody(schema, { name: 'ok', fields: { 'a\u0000': 'x' } }));
    expect(key.message).toBe('fields.a\u0000: key must not contain U+0000');
    expect(parseBody(schema, { name: 'bot 😀' }).name).toBe('bot 😀'); // a whole surrogate pair is fine
  });
});

describe('postback caps', () => {
  const pairs = (n: number, name = (i: number) => `k${i}`): Array<[string, string]> =>
    Array.from({ length: n }, (_, i) => [name(i), 'v']);
  const parse = (input: Partial<PostbackInput>) => parsePostback({ query: [], body: null, ...input });

  it(`more than ${MAX_POSTBACK_PARAMS} parameters (query and body together) is 413 naming the limit`, () => {
    expect(parse({ query: [['chatId', '1'], ...pairs(MAX_POSTBACK_PARAMS - 1)] }).fields.size).toBe(
      MAX_POSTBACK_PARAMS - 1,
    );
    const error = refusal(() => parse({ query: [['chatId', '1'], ...pairs(120)], body: pairs(100, (i) => `b${i}`) }));
    expect(error).toMatchObject({
      kind: 'too_large',
      code: 'too_many_params',
      details: { limit: MAX_POSTBACK_PARAMS },
    });
    expect(error.message).toBe(`the request has 221 parameters; a postback carries at most ${MAX_POSTBACK_PARAMS}`);
  });

  it("a JSON body's fields and tracker keys count one each", () => {
    const fields = Object.fromEntries(pairs(150));
    const tracker = Object.fromEntries(pairs(60));
    const error = refusal(() => parse({ body: { chatId: 1, fields, tracker } }));
    expect(error.code).toBe('too_many_params');
  });

  it(`a request adding more than ${MAX_DIALOG_TAGS} tags is 422 naming the limit`, () => {
    const tags = Array.from({ length: MAX_DIALOG_TAGS + 1 }, (_, i) => `t${i}`);
    const error = refusal(() =>
      parse({
        query: [
          ['chatId', '1'],
          ['tags', tags.slice(0, 300).join(',')],
          ['addTags', tags.slice(300).join(',')],
        ],
      }),
    );
    expect(error).toMatchObject({ kind: 'unprocessable', code: 'too_many_tags', param: 'tags' });
    expect(error.message).toBe(
      `the request names ${MAX_DIALOG_TAGS + 1} tags; a dialog holds at most ${MAX_DIALOG_TAGS} tags`,
    );
    // The same tag twice is one tag.
    expect(
      parse({
        query: [
          ['chatId', '1'],
          ['tags', tags.slice(0, 300).join(',')],
          ['addTags', tags.slice(0, 300).join(',')],
        ],
      }).addTags,
    ).toHaveLength(300);
  });
});

describe('dialog caps in the merge', () => {
  const full = (): DialogState => {
    const fields = Object.fromEntries(Array.from({ length: MAX_DIALOG_FIELDS }, (_, i) => [`f${i}`, i]));
    const tracker = Object.fromEntries(Array.from({ length: MAX_DIALOG_TRACKER_FIELDS }, (_, i) => [`t${i}`, 'x']));
    const tags = Array.from({ length: MAX_DIALOG_TAGS }, (_, i) => `g${i}`);
    return mergeUpdates(emptyDialogState(), [{ seq: 1, patch: { fields, tracker, addTags: tags } }]).state;
  };

  it('a dialog at its limits takes no new key; the rest of the update applies and the left-out keys are reported', () => {
    const result = mergeUpdates(full(), [
      {
        seq: 2,
        patch: {
          fields: { f0: 'changed', extra: 1, f1: null },
          tracker: { t0: 'changed', more: 'x' },
          addTags: ['g0', 'new-tag'],
          status: 'manual',
        },
      },
    ]);
    expect(result.state.fields.f0).toBe('changed');
    expect(result.state.fields).not.toHaveProperty('f1');
    expect(result.state.fields).not.toHaveProperty('extra'); // f1 left only after extra was refused
    expect(result.state.tracker.t0).toBe('changed');
    expect(Object.keys(result.state.tracker)).toHaveLength(MAX_DIALOG_TRACKER_FIELDS);
    expect(result.state.tags).toHaveLength(MAX_DIALOG_TAGS);
    expect(result.state.status).toBe('manual');
    expect(result.dropped).toEqual({ fields: ['extra'], tracker: ['more'], tags: ['new-tag'] });
    // Room made by a removal is taken by the next new key.
    const after = mergeUpdates(result.state, [{ seq: 3, patch: { fields: { extra: 1 } } }]);
    expect(after.state.fields.extra).toBe(1);
    expect(after.dropped.fields).toEqual([]);
  });

  it('one update cannot push a dialog past a limit either', () => {
    const fields = Object.fromEntries(Array.from({ length: MAX_DIALOG_FIELDS + 5 }, (_, i) => [`f${i}`, i]));
    const result = mergeUpdates(emptyDialogState(), [{ seq: 1, patch: { fields } }]);
    expect(Object.keys(result.state.fields)).toHaveLength(MAX_DIALOG_FIELDS);
    expect(result.dropped.fields).toHaveLength(5);
  });

  it("the script's changes do not push a dialog past its limits", () => {
    const saved = applyScriptChanges(full(), {
      fields: { extra: 1, f0: 'x' },
      addTags: ['new-tag'],
      tracker: { more: 'x' },
    });
    expect(saved.fields.f0).toBe('x');
    expect(saved.fields).not.toHaveProperty('extra');
    expect(saved.tags).toHaveLength(MAX_DIALOG_TAGS);
    expect(saved.tags).not.toContain('new-tag');
    expect(saved.tracker).not.toHaveProperty('more');
  });
});
