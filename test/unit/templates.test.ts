import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  MAX_EACH_ITERATIONS,
  MAX_HELPER_CALLS,
  MAX_RENDER_LENGTH,
  MAX_TEMPLATE_BYTES,
  TemplateError,
  checkTemplate,
  clearTemplateCache,
  compileTemplate,
  renderTemplate,
  type TemplateContext,
  type TemplateMode,
} from '../../src/templates/index.js';
import { LruCache } from '../../src/util/lru-cache.js';
import { buildRenderContext } from '../../src/templates/context.js';
import { hb } from '../../src/templates/environment.js';

const CREATED_AT = '2024-03-10T17:49:32.806Z';

function dialog(overrides: Partial<TemplateContext> = {}): TemplateContext {
  return {
    chatId: 123456789,
    username: 'johndoe',
    name: 'John Doe',
    createdAt: new Date(CREATED_AT),
    stepKey: 'welcome',
    stepId: 'step-42',
    status: 'active',
    fields: { refId: 'R77', vip: true, tags: ['red', 'green'], amount: 5000 },
    tracker: { clickid: 'test123', sub1: 'fb' },
    ...overrides,
  };
}

const render = (source: string, ctx: TemplateContext = dialog(), mode: TemplateMode = 'plain') =>
  compileTemplate(source, mode).render(ctx);

function compileError(source: string, mode: TemplateMode = 'plain'): TemplateError {
  try {
    compileTemplate(source, mode);
  } catch (error) {
    expect(error).toBeInstanceOf(TemplateError);
    return error as TemplateError;
  }
  throw new Error(`expected ${JSON.stringify(source)} to be refused`);
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('placeholders: both brace forms for every name', () => {
  it.each([
    ['chatId', '{{chatId}}', '{chatId}', '123456789'],
    ['username', '{{username}}', '{username}', 'johndoe'],
    ['name', '{{name}}', '{name}', 'John Doe'],
    ['createdAt', '{{createdAt}}', '{createdAt}', CREATED_AT],
    ['stepKey', '{{stepKey}}', '{stepKey}', 'welcome'],
    ['stepId', '{{stepId}}', '{stepId}', 'step-42'],
    ['status', '{{status}}', '{status}', 'active'],
    ['fields.KEY', '{{fields.refId}}', '{fields.refId}', 'R77'],
    ['bare custom field', '{{refId}}', '{refId}', 'R77'],
    ['tracker.KEY', '{{tracker.clickid}}', '{tracker.clickid}', 'test123'],
  ])('%s', (_label, double, single, expected) => {
    expect(render(`<${double}>`)).toBe(`<${expected}>`);
    expect(render(`<${single}>`)).toBe(`<${expected}>`);
  });

  it('renders the Keitaro postback example', () => {
    const url =
      'https://keitaro.yoursite.com/25123a/postback?subid={tracker.clickid}&username={username}&chatid={chatId}&startdialogue={createdAt}';
    expect(render(url, dialog(), 'url')).toBe(
      'https://keitaro.yoursite.com/25123a/postback?subid=test123&username=johndoe&chatid=123456789' +
        '&startdialogue=2024-03-10T17%3A49%3A32.806Z',
    );
  });

  it('renders the partner signup example', () => {
    expect(render('https://partner.com/signup?sub1={{tracker.clickid}}', dialog(), 'url')).toBe(
      'https://partner.com/signup?sub1=test123',
    );
  });

  it('renders missing values as empty', () => {
    const ctx: TemplateContext = { chatId: 5, username: null, fields: {}, tracker: {} };
    const names = ['username', 'name', 'createdAt', 'stepKey', 'stepId', 'status'];
    for (const n of names) {
      expect(render(`[{{${n}}}|{${n}}]`, ctx)).toBe('[|]');
    }
    expect(render('[{{fields.nope}}|{fields.nope}|{nope}|{{nope}}|{{tracker.nope}}|{tracker.nope}]', ctx)).toBe(
      '[|||||]',
    );
    expect(render('[{{nope.deeper.still}}]', ctx)).toBe('[]');
  });

  it('keeps literal braces that are not placeholders', () => {
    expect(render('{ } {} {a b} {"x": 1} {x!}')).toBe('{ } {} {a b} {"x": 1} {x!}');
  });

  it('works in JSON bodies with their own braces', () => {
    const body = render('{"a": "{chatId}", "b": {"c": "{{tracker.clickid}}"}, "n": {fields.amount}}', dialog(), 'json');
    expect(JSON.parse(body)).toEqual({ a: '123456789', b: { c: 'test123' }, n: 5000 });
    // A placeholder directly before a closing brace.
    expect(JSON.parse(render('{"a":{chatId}}', dialog(), 'json'))).toEqual({ a: 123456789 });
  });

  it('does not disturb {{…}}, {{{…}}} and comments', () => {
    expect(render('{{{name}}}|{{name}}|{{!-- {name} --}}|{{! {name} }}')).toBe('John Doe|John Doe||');
  });

  it('keeps a backslash before a single-brace placeholder, and honours \\{{ escapes', () => {
    expect(render('C:\\{name}')).toBe('C:\\John Doe');
    expect(render('\\{{name}}')).toBe('{{name}}');
  });

  it('supports keys with dots, dashes and digits in the single-brace form', () => {
    const ctx = dialog({ fields: { 'a.b': 'dot', 'x-y': 'dash', '2fa': 'two' } });
    expect(render('{a.b}|{fields.a.b}|{x-y}|{2fa}|{{fields.[a.b]}}|{{x-y}}', ctx)).toBe('dot|dot|dash|two|dot|dash');
  });

  it('a bare {{KEY}} prefers the built-in name over a custom field of the same name', () => {
    const ctx = dialog({ fields: { name: 'custom', status: 'custom' } });
    expect(render('{{name}}|{name}|{{fields.name}}|{fields.status}|{{status}}', ctx)).toBe(
      'John Doe|John Doe|custom|custom|active',
    );
  });
});

describe('value formatting', () => {
  it('formats createdAt as ISO 8601 UTC with milliseconds', () => {
    expect(render('{{createdAt}}', dialog({ createdAt: '2024-03-10T20:49:32.806+03:00' }))).toBe(CREATED_AT);
    expect(render('{{createdAt}}', dialog({ createdAt: 'not a date' }))).toBe('');
    expect(render('{{createdAt}}', dialog({ createdAt: new Date(Number.NaN) }))).toBe('');
  });

  it('formats numbers, booleans, null and multiselect lists', () => {
    const ctx = dialog({
      fields: {
        n: 5000,
        f: 1.5,
        neg: -3,
        t: true,
        no: false,
        nil: null,
        tags: ['a', 'b', 'c'],
        date: new Date(CREATED_AT),
      },
    });
    expect(render('{n}|{f}|{neg}|{t}|{no}|[{nil}]|{tags}|{date}', ctx)).toBe(
      `5000|1.5|-3|true|false|[]|a, b, c|${CREATED_AT}`,
    );
    expect(render('{{chatId}}', dialog({ chatId: '-100200300' }))).toBe('-100200300');
  });

  it('ignores field keys outside [A-Za-z0-9_.-]{1,64}', () => {
    const ctx = dialog({ fields: { 'bad key': 'x', ['k'.repeat(65)]: 'y', ok: 'z' } });
    expect(render('[{{fields.[bad key]}}][{{#each fields}}{{@key}},{{/each}}]', ctx)).toBe('[][ok,]');
  });
});

describe('encoding per mode', () => {
  const ctx = dialog({ name: 'a b&c', fields: { q: 'he said "hi"\\\n<ok>', tags: ['x y', 'z&w'], plan: 'pro plan' } });

  it('url: percent-encodes each value, leaves the template text as written', () => {
    expect(render('https://x.io/p?n={name}&m={{name}}', ctx, 'url')).toBe('https://x.io/p?n=a%20b%26c&m=a%20b%26c');
    expect(render('?t={tags}', ctx, 'url')).toBe('?t=x%20y%2C%20z%26w');
    expect(render('?t={{#each fields.tags}}{{this}};{{/each}}', ctx, 'url')).toBe('?t=x%20y;z%26w;');
    expect(render('?s={s}', dialog({ fields: { s: 'bad \uD800 surrogate' } }), 'url')).toBe(
      '?s=bad%20%EF%BF%BD%20surrogate',
    );
  });

  it('json: escapes values so the body stays valid JSON', () => {
    const raw = 'quote " backslash \\ newline \n tab \t end';
    const c = dialog({ name: raw });
    const body = render('{"n":"{{name}}"}', c, 'json');
    expect(JSON.parse(body)).toEqual({ n: raw });
    expect(JSON.parse(render('{"n":"{name}","q":"{q}"}', { ...ctx, name: raw }, 'json'))).toEqual({
      n: raw,
      q: 'he said "hi"\\\n<ok>',
    });
    // A quote in a value cannot close the string and add keys.
    const evil = dialog({ name: '", "admin": true, "x": "' });
    expect(JSON.parse(render('{"n":"{{name}}"}', evil, 'json'))).toEqual({ n: '", "admin": true, "x": "' });
  });

  it('html: escapes &, <, >, ", \' in values but not in the template', () => {
    const c = dialog({ name: `<i>Tom & "Jerry"</i> 'x'` });
    expect(render('<b>{{name}}</b>', c, 'html')).toBe(
      '<b>&lt;i&gt;Tom &amp; &quot;Jerry&quot;&lt;/i&gt; &#39;x&#39;</b>',
    );
    // Triple-stash does not bypass the encoding.
    expect(render('{{{name}}}', c, 'html')).toBe('&lt;i&gt;Tom &amp; &quot;Jerry&quot;&lt;/i&gt; &#39;x&#39;');
  });

  it('plain: values are inserted raw', () => {
    const c = dialog({ name: `<i>Tom & "Jerry"</i> %20 \\n` });
    expect(render('Hi {{name}}!', c, 'plain')).toBe(`Hi <i>Tom & "Jerry"</i> %20 \\n!`);
  });

  it('encodes every value exactly once', () => {
    const c = dialog({ name: '&amp;' });
    expect(render('{{name}}', c, 'html')).toBe('&amp;amp;');
    expect(render('{{#with name}}{{this}}{{/with}}', c, 'html')).toBe('&amp;amp;');
    expect(render('{{name}}', dialog({ name: '%41' }), 'url')).toBe('%2541');
  });

  it('eq compares unencoded values', () => {
    expect(render('{{#if (eq fields.plan "pro plan")}}yes{{else}}no{{/if}}', ctx, 'url')).toBe('yes');
    expect(render('{{#if (eq fields.plan "pro%20plan")}}yes{{else}}no{{/if}}', ctx, 'url')).toBe('no');
    expect(render('{{#if (eq fields.amount 5000)}}yes{{/if}}', dialog(), 'html')).toBe('yes');
  });
});

describe('block helpers', () => {
  it('{{#if fields.vip}} follows the field value', () => {
    const tpl = 'Hi{{#if fields.vip}}, VIP{{/if}}!';
    expect(render(tpl, dialog({ fields: { vip: true } }))).toBe('Hi, VIP!');
    expect(render(tpl, dialog({ fields: { vip: false } }))).toBe('Hi!');
    expect(render(tpl, dialog({ fields: {} }))).toBe('Hi!');
    expect(render(tpl, dialog({ fields: { vip: '' } }))).toBe('Hi!');
    expect(render(tpl, dialog({ fields: { vip: 'yes' } }))).toBe('Hi, VIP!');
    expect(render(tpl, dialog({ fields: { vip: 0 } }))).toBe('Hi!');
    expect(render(tpl, dialog({ fields: { vip: [] } }))).toBe('Hi!');
  });

  it('supports else, unless, each, with and sections', () => {
    expect(render('{{#if fields.vip}}a{{else}}b{{/if}}', dialog({ fields: { vip: false } }))).toBe('b');
    expect(render('{{#unless fields.vip}}regular{{/unless}}', dialog({ fields: { vip: false } }))).toBe('regular');
    expect(render('{{#each fields.tags}}{{@index}}:{{this}} {{/each}}')).toBe('0:red 1:green ');
    expect(render('{{#each fields.tags as |t|}}{{t}}/{{../name}} {{/each}}')).toBe('red/John Doe green/John Doe ');
    expect(render('{{#each fields.none}}x{{else}}empty{{/each}}')).toBe('empty');
    expect(render('{{#with tracker}}{{clickid}}-{{sub1}}{{/with}}')).toBe('test123-fb');
    expect(render('{{#fields.tags}}[{{this}}]{{/fields.tags}}')).toBe('[red][green]');
  });
});

describe('untrusted templates', () => {
  it.each([
    '{{foo name}}',
    '{{#foo name}}x{{/foo}}',
    '{{#if (foo name)}}x{{/if}}',
    '{{lookup this "constructor"}}',
    '{{log "hi"}}',
    '{{helperMissing name}}',
    '{{#blockHelperMissing name}}x{{/blockHelperMissing}}',
  ])('refuses unknown helpers at compile: %s', (source) => {
    expect(compileError(source).message).toMatch(/unknown helper/i);
  });

  it.each(['{{> partial}}', '{{#> layout}}x{{/layout}}', '{{* deco}}', '{{#* inline "p"}}x{{/inline}}'])(
    'refuses partials and decorators: %s',
    (source) => {
      expect(compileError(source).message).toMatch(/not supported/);
    },
  );

  it('refuses misused helpers', () => {
    expect(compileError('{{#each}}x{{/each}}').message).toMatch(/"each" needs exactly one argument/);
    expect(compileError('{{if fields.vip}}').message).toMatch(/must be used as a block/);
    expect(compileError('{{#eq a b}}x{{/eq}}').message).toMatch(/not a block helper/);
  });

  it.each([
    '{{constructor}}',
    '{{__proto__}}',
    '{{constructor.name}}',
    '{{fields.constructor.name}}',
    '{{fields.constructor}}',
    '{{fields.__proto__}}',
    '{{this.constructor.constructor}}',
    '{{name.constructor}}',
    '{{name.constructor.name}}',
    '{{name.[0]}}',
    '{{name.toString}}',
    '{{fields.amount.constructor}}',
    '{{fields.amount.toFixed}}',
    '{{fields.vip.constructor}}',
    '{{fields.tags.constructor}}',
    '{{fields.tags.map}}',
    '{{toString}}',
    '{{valueOf}}',
    '{{hasOwnProperty}}',
    '{{__defineGetter__}}',
    '{{@root.constructor}}',
    '{{@constructor}}',
    '{{#with constructor}}{{name}}{{/with}}',
    '{{#with name.constructor}}{{name}}{{/with}}',
    '{{#each constructor}}{{this}}{{/each}}',
    '{{#each fields.tags}}{{constructor}}{{this.constructor}}{{@constructor}}{{/each}}',
    '{{#with fields}}{{constructor.constructor}}{{/with}}',
    '{{this}}{{fields}}{{tracker}}{{@root}}',
  ])('prototype trick renders empty: %s', (source) => {
    const errors = vi.spyOn(console, 'error');
    const logs = vi.spyOn(console, 'log');
    for (const mode of ['plain', 'html', 'url', 'json'] as const) {
      expect(render(source, dialog(), mode)).toBe('');
    }
    expect(errors).not.toHaveBeenCalled();
    expect(logs).not.toHaveBeenCalled();
  });

  it('never leaks function source', () => {
    const tricks = [
      '{{#each fields.tags}}{{#with constructor}}{{this}}{{/with}}{{/each}}',
      '{{#with name}}{{constructor}}{{/with}}',
      '{{#each this}}{{@key}}={{this}};{{/each}}',
    ];
    for (const source of tricks) {
      expect(render(source)).not.toMatch(/function|native code|=>/);
    }
    expect(checkTemplate('{{lookup this "constructor"}}', 'plain')).toMatch(/unknown helper/i);
  });

  it('treats a "__proto__" field key as plain data', () => {
    const fields = JSON.parse('{"__proto__": {"polluted": "yes"}, "ok": "1"}') as Record<string, unknown>;
    expect(render('[{{fields.__proto__.polluted}}][{{polluted}}][{ok}]', dialog({ fields }))).toBe('[][][1]');
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('renders against objects without reachable prototype members', () => {
    const root = buildRenderContext(dialog(), 'plain') as unknown as Record<string, unknown>;
    for (const value of [root, root['fields'], root['tracker'], root['name'], root['tags']]) {
      let proto: unknown = Object.getPrototypeOf(value);
      const names: string[] = [];
      for (; proto !== null; proto = Object.getPrototypeOf(proto)) names.push(...Object.getOwnPropertyNames(proto));
      expect(names.filter((n) => n !== 'length')).toEqual([]);
    }
    // The root's own string form is what a template that prints it shows.
    // eslint-disable-next-line @typescript-eslint/no-base-to-string
    expect(`${String(root['fields'])}|${String(root)}|${String(root['tags'])}|${String(root['name'])}`).toBe(
      '||red, green|John Doe',
    );
  });

  it('only compiles strings', () => {
    const ast = hb.parse('{{name}}');
    expect(() => compileTemplate(ast as unknown as string, 'plain')).toThrow(TemplateError);
  });
});

describe('errors and limits', () => {
  it('reports syntax errors as TemplateError with a message and line', () => {
    const error = compileError('Hello\n{{#if fields.vip}}VIP');
    expect(error.name).toBe('TemplateError');
    expect(error.message).toMatch(/syntax error/i);
    expect(error.line).toBe(2);

    const unclosed = compileError('line one\nline {{name}\n');
    expect(unclosed.message).toMatch(/syntax error/i);
    expect(unclosed.line).toBe(2);
  });

  it('reports positions in the original source, before single-brace conversion', () => {
    const error = compileError('{name} {tracker.clickid} {{foo x}}');
    expect(error.line).toBe(1);
    expect(error.column).toBe(26);
    expect(error.message).toContain('line 1, column 26');
    const mismatch = compileError('{{#if a}}\n  {{/each}}');
    expect(mismatch.message).toMatch(/if doesn't match each/);
  });

  it('checkTemplate returns null or the message', () => {
    expect(checkTemplate('Hi {name}, {{#if fields.vip}}VIP{{/if}}', 'html')).toBeNull();
    expect(checkTemplate('Hi {{#if}}', 'html')).toMatch(/syntax error/i);
  });

  it('refuses templates over the size limit', () => {
    expect(MAX_TEMPLATE_BYTES).toBe(8 * 1024);
    expect(compileTemplate('a'.repeat(MAX_TEMPLATE_BYTES), 'plain').render(dialog())).toHaveLength(MAX_TEMPLATE_BYTES);
    expect(compileError('a'.repeat(MAX_TEMPLATE_BYTES + 1)).message).toMatch(/too large/);
    // The limit is in UTF-8 bytes, not characters.
    expect(compileError('я'.repeat(MAX_TEMPLATE_BYTES / 2 + 1)).message).toMatch(/too large/);
  });

  it('refuses renders whose output exceeds the limit', () => {
    const big = 'x'.repeat(10_000);
    const tags = Array.from({ length: 10 }, (_, i) => `t${i}`);
    const ctx = dialog({ name: big, fields: { tags } });
    expect(() => render('{{#each fields.tags}}{{@root.name}}{{/each}}', ctx)).toThrow(/longer than/);
    expect(() => render('{name}'.repeat(7), ctx)).toThrow(TemplateError);
    expect(render('{name}'.repeat(6), ctx)).toHaveLength(60_000);
    expect(60_000).toBeLessThanOrEqual(MAX_RENDER_LENGTH);
  });

  it('bounds nested loops', () => {
    const tags = Array.from({ length: 20 }, (_, i) => `t${i}`);
    const ctx = dialog({ fields: { tags } });
    const nested =
      '{{#each fields.tags}}{{#each @root.fields.tags}}{{#each @root.fields.tags}}.{{/each}}{{/each}}{{/each}}';
    expect(20 ** 3).toBeGreaterThan(MAX_EACH_ITERATIONS);
    const started = performance.now();
    expect(() => render(nested, ctx)).toThrow(/iterations/);
    expect(performance.now() - started).toBeLessThan(2000);
    // Two levels (20 + 400 iterations) are fine.
    expect(render('{{#each fields.tags}}{{#each @root.fields.tags}}.{{/each}}{{/each}}', ctx)).toHaveLength(400);
  });

  it('refuses at compile a template that exceeds the limits even without data', () => {
    // The root has 9 entries with an empty dialog: 9 + 81 + 729 + 6561 iterations.
    const source = '{{#each this}}{{#each @root}}{{#each @root}}{{#each @root}}.{{/each}}{{/each}}{{/each}}{{/each}}';
    expect(compileError(source).message).toMatch(/iterations/);
  });

  it('bounds helper calls inside loops', () => {
    const tags = Array.from({ length: 500 }, (_, i) => `t${i}`);
    const body = '{{#if @first}}{{/if}}'.repeat(30);
    expect(500 * 30).toBeGreaterThan(MAX_HELPER_CALLS);
    expect(() => render(`{{#each fields.tags}}${body}{{/each}}`, dialog({ fields: { tags } }))).toThrow(/helpers/);
  });
});

describe('cache', () => {
  it('returns the same compiled object for the same source and mode', () => {
    const source = `Hello {name} ${Math.random()}`;
    const first = compileTemplate(source, 'html');
    expect(compileTemplate(source, 'html')).toBe(first);
    expect(compileTemplate(source, 'plain')).not.toBe(first);
    clearTemplateCache();
    expect(compileTemplate(source, 'html')).not.toBe(first);
  });

  it('compiles each template once', () => {
    const compile = vi.spyOn(hb, 'compile');
    const source = `Once {{name}} ${Math.random()}`;
    expect(renderTemplate(source, 'plain', dialog())).toMatch(/^Once John Doe /);
    expect(renderTemplate(source, 'plain', dialog({ name: 'Ann' }))).toMatch(/^Once Ann /);
    expect(compile).toHaveBeenCalledTimes(1);
  });

  it('LruCache evicts the least recently used entry', () => {
    const lru = new LruCache<string, number>(2);
    lru.set('a', 1);
    lru.set('b', 2);
    expect(lru.get('a')).toBe(1);
    lru.set('c', 3);
    expect(lru.get('b')).toBeUndefined();
    expect(lru.get('a')).toBe(1);
    expect(lru.get('c')).toBe(3);
    expect(lru.size).toBe(2);
  });
});
