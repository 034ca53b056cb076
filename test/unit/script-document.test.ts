import { describe, expect, it } from 'vitest';
import {
  assignStepIds,
  type ScriptProblem,
  type TemplateMode,
  validateScript,
  type ValidateScriptOptions,
} from '../../src/domain/script/index.js';

type Doc = { start: string; steps: Array<Record<string, unknown>> };

function example(): Doc {
  return {
    start: 'welcome',
    steps: [
      {
        key: 'welcome',
        type: 'send_message',
        text: 'Hello, {{name}}!',
        buttons: [{ text: 'Go', next: 'offer' }],
        next: 'postback',
      },
      {
        key: 'postback',
        type: 'send_webhook',
        method: 'GET',
        url: 'https://tracker.example/postback?subid={tracker.clickid}&chatid={chatId}',
        next: 'wait',
      },
      { key: 'wait', type: 'delay', seconds: 3600, next: 'check' },
      {
        key: 'check',
        type: 'condition',
        branches: [{ when: [{ subject: 'fields.userBalance', op: 'gt', value: 100 }], next: 'vip' }],
        else: 'offer',
      },
      { key: 'ask', type: 'input', text: 'Your e-mail?', field: 'email', next: 'offer' },
      { key: 'offer', type: 'send_message', text: 'https://partner.example/signup?sub1={{tracker.clickid}}' },
      { key: 'vip', type: 'change_tags', add: ['vip'], next: 'offer' },
    ],
  };
}

/** A document made of the given steps, starting at the first. */
function doc(...steps: Array<Record<string, unknown>>): Doc {
  return { start: String(steps[0]?.key), steps };
}

const end = { key: 'end', type: 'set_status', status: 'manual' };

function problemsOf(input: unknown, options?: ValidateScriptOptions): ScriptProblem[] {
  const result = validateScript(input, options);
  if (result.ok) throw new Error('expected the document to be refused');
  return result.problems;
}

function expectValid(input: unknown, options?: ValidateScriptOptions): void {
  const result = validateScript(input, options);
  expect(result.ok ? [] : result.problems).toEqual([]);
}

const problem = (step: string | undefined, path: string, message: string | RegExp) => ({
  ...(step === undefined ? {} : { step }),
  path,
  message: typeof message === 'string' ? message : expect.stringMatching(message),
});

describe('validateScript: valid documents', () => {
  it('accepts the documented example and returns it as the normalized script', () => {
    const result = validateScript(example());
    expect(result).toEqual({ ok: true, script: example() });
  });

  it('accepts every step type and option', () => {
    expectValid(
      doc(
        {
          key: 'm',
          type: 'send_message',
          text: 'Hi',
          finishStatus: 'auto',
          buttons: [
            { text: 'Site', url: 'https://example.com/x' },
            { text: 'Next', next: 'hook' },
          ],
        },
        {
          key: 'hook',
          type: 'send_webhook',
          method: 'POST',
          url: 'http://example.com/hook',
          body: '{"chat": "{{chatId}}"}',
          headers: { 'X-Token': 'secret', Accept: 'application/json' },
          next: 'until',
        },
        { key: 'until', type: 'delay', until: '09:30', next: 'cond' },
        {
          key: 'cond',
          type: 'condition',
          branches: [
            {
              when: [
                { subject: 'tags', op: 'has', value: 'vip' },
                { subject: 'tags', op: 'not', value: 'banned' },
                { subject: 'tracker.clickid', op: 'exists' },
                { subject: 'fields.age', op: 'lt', value: 18 },
                { subject: 'fields.name', op: 'is', value: 'Ann' },
                { subject: 'fields.ok', op: 'not', value: false },
                { subject: 'fields.email', op: 'has', value: '@' },
              ],
              next: 'ask',
            },
          ],
        },
        { key: 'ask', type: 'input', text: 'E-mail?', field: 'user.email', next: 'fields' },
        { key: 'fields', type: 'set_fields', fields: { plan: 'pro', score: 3, paid: true }, next: 'tags' },
        { key: 'tags', type: 'change_tags', remove: ['trial'], next: 'split' },
        {
          key: 'split',
          type: 'ab_split',
          variants: [
            { weight: 50, next: 'end' },
            { weight: 0.5, next: 'm' },
          ],
        },
        { ...end, finishStatus: 'blocked' },
      ),
    );
  });
});

describe('validateScript: shape problems', () => {
  it('refuses a document that is not an object', () => {
    expect(problemsOf('nope')).toEqual([problem(undefined, '', 'must be an object')]);
    expect(problemsOf(null)).toEqual([problem(undefined, '', 'must be an object')]);
  });

  it('refuses an empty step list', () => {
    expect(problemsOf({ start: 'a', steps: [] })).toEqual([problem(undefined, 'steps', 'must not be empty')]);
  });

  it('reports an unknown step type with the step key and path', () => {
    const script = example();
    script.steps[2] = { key: 'wait', type: 'teleport', to: 'mars' };
    expect(problemsOf(script)).toEqual([problem('wait', 'steps[2].type', /^unknown step type "teleport"/)]);
  });

  it('reports a missing step type', () => {
    const script = example();
    delete script.steps[4]!.type;
    expect(problemsOf(script)).toEqual([problem('ask', 'steps[4].type', 'is required')]);
  });

  it('reports each unknown property, in steps, nested objects and the document', () => {
    const script = { ...example(), version: 2 };
    script.steps[0] = { ...script.steps[0], colour: 'red', buttons: [{ text: 'Go', next: 'offer', style: 'x' }] };
    expect(problemsOf(script)).toEqual([
      problem(undefined, 'version', 'unknown property'),
      problem('welcome', 'steps[0].buttons[0].style', 'unknown property'),
      problem('welcome', 'steps[0].colour', 'unknown property'),
    ]);
  });

  it('reports missing required properties and wrong types', () => {
    expect(
      problemsOf(
        doc(
          { key: 'a', type: 'send_webhook', url: 'https://x.example', method: 'DELETE', next: 'b' },
          { key: 'b', type: 'input', text: 42 },
        ),
      ),
    ).toEqual([
      problem('a', 'steps[0].method', 'must be one of "GET", "POST", "PUT"'),
      problem('b', 'steps[1].text', 'must be a string'),
      problem('b', 'steps[1].field', 'is required'),
    ]);
  });

  it('refuses malformed keys and names the step only when its key is valid', () => {
    const long = 'k'.repeat(65);
    expect(
      problemsOf(
        doc(
          { key: 'a', type: 'input', text: 'Name?', field: 'first name', next: long },
          { key: 'b c', type: 'set_status', status: 'auto' },
        ),
      ),
    ).toEqual([
      problem('a', 'steps[0].next', /^must be 1-64 characters/),
      problem('a', 'steps[0].field', /^must be 1-64 characters/),
      problem(undefined, 'steps[1].key', /^must be 1-64 characters/),
    ]);
  });

  it('refuses __proto__, constructor and prototype as step keys, field keys and tags', () => {
    const script = JSON.parse(`{
      "start": "a",
      "steps": [
        { "key": "a", "type": "set_fields", "fields": { "__proto__": 1, "constructor": "x" }, "next": "prototype" },
        { "key": "b", "type": "change_tags", "add": ["prototype"] },
        { "key": "c", "type": "condition", "branches": [
          { "when": [{ "subject": "fields.__proto__", "op": "exists" }], "next": "a" } ] }
      ]}`) as unknown;
    expect(problemsOf(script)).toEqual([
      problem('a', 'steps[0].next', '"prototype" is not allowed as a key'),
      problem('a', 'steps[0].fields.__proto__', '"__proto__" is not allowed as a key'),
      problem('a', 'steps[0].fields.constructor', '"constructor" is not allowed as a key'),
      problem('b', 'steps[1].add[0]', '"prototype" is not allowed as a key'),
      problem('c', 'steps[2].branches[0].when[0].subject', 'names a forbidden key'),
    ]);
  });

  it('bounds the number of steps, text length and button count', () => {
    const many = Array.from({ length: 4 }, (_, i) => ({ key: `s${i}`, type: 'set_status', status: 'auto' }));
    expect(problemsOf(doc(...many), { maxSteps: 3 })).toEqual([
      problem(undefined, 'steps', 'must have at most 3 items'),
    ]);
    expect(problemsOf(doc(...Array.from({ length: 501 }, () => end)))).toEqual([
      problem(undefined, 'steps', 'must have at most 500 items'),
    ]);

    const buttons = Array.from({ length: 101 }, () => ({ text: 'x', url: 'https://x.example' }));
    expect(problemsOf(doc({ key: 'a', type: 'send_message', text: 'x'.repeat(4097), buttons }))).toEqual([
      problem('a', 'steps[0].text', 'must have at most 4096 characters'),
      problem('a', 'steps[0].buttons', 'must have at most 100 items'),
    ]);
  });
});

describe('validateScript: references', () => {
  it('reports duplicate step keys on each later occurrence', () => {
    const script = example();
    script.steps.push({ ...end, key: 'wait' }, { ...end, key: 'wait' });
    expect(problemsOf(script)).toEqual([
      problem('wait', 'steps[7].key', 'duplicate step key "wait" (first used by steps[2])'),
      problem('wait', 'steps[8].key', 'duplicate step key "wait" (first used by steps[2])'),
    ]);
  });

  it('reports a start that names no step', () => {
    expect(problemsOf({ ...example(), start: 'hello' })).toEqual([
      problem(undefined, 'start', 'names no step: "hello"'),
    ]);
  });

  it('reports every dangling reference with its path', () => {
    expect(
      problemsOf(
        doc(
          { key: 'm', type: 'send_message', text: 'x', buttons: [{ text: 'b', next: 'nope1' }], next: 'nope2' },
          {
            key: 'c',
            type: 'condition',
            branches: [{ when: [{ subject: 'tags', op: 'exists' }], next: 'nope3' }],
            else: 'nope4',
          },
          {
            key: 's',
            type: 'ab_split',
            variants: [
              { weight: 1, next: 'm' },
              { weight: 1, next: 'nope5' },
            ],
          },
        ),
      ),
    ).toEqual([
      problem('m', 'steps[0].next', 'names no step: "nope2"'),
      problem('m', 'steps[0].buttons[0].next', 'names no step: "nope1"'),
      problem('c', 'steps[1].branches[0].next', 'names no step: "nope3"'),
      problem('c', 'steps[1].else', 'names no step: "nope4"'),
      problem('s', 'steps[2].variants[1].next', 'names no step: "nope5"'),
    ]);
  });

  it('does not call a reference to a step with a broken shape dangling', () => {
    expect(
      problemsOf(
        doc({ key: 'a', type: 'set_status', status: 'auto', next: 'b' }, { key: 'b', type: 'delay', seconds: '5' }),
      ),
    ).toEqual([problem('b', 'steps[1].seconds', 'must be a number')]);
  });
});

describe('validateScript: step rules', () => {
  it('requires a button to have exactly one of next and an http(s) url', () => {
    const buttons = [
      { text: 'both', next: 'end', url: 'https://x.example' },
      { text: 'neither' },
      { text: 'ftp', url: 'ftp://x.example/file' },
      { text: 'relative', url: '/signup' },
      { text: 'ok', url: 'http://x.example' },
    ];
    expect(problemsOf(doc({ key: 'm', type: 'send_message', text: 'x', buttons }, end))).toEqual([
      problem('m', 'steps[0].buttons[0]', 'must have either next or url, not both'),
      problem('m', 'steps[0].buttons[1]', 'must have next or url'),
      problem('m', 'steps[0].buttons[2].url', 'must be an http(s) URL'),
      problem('m', 'steps[0].buttons[3].url', 'must be an http(s) URL'),
    ]);
  });

  it('requires a delay to have exactly one of seconds (1 s to 31 days) and a valid HH:MM until', () => {
    const steps = [
      { key: 'both', type: 'delay', seconds: 5, until: '10:00' },
      { key: 'neither', type: 'delay' },
      { key: 'zero', type: 'delay', seconds: 0 },
      { key: 'fraction', type: 'delay', seconds: 1.5 },
      { key: 'long', type: 'delay', seconds: 31 * 86400 + 1 },
      { key: 'hour', type: 'delay', until: '24:00' },
      { key: 'short', type: 'delay', until: '9:30' },
      { key: 'max', type: 'delay', seconds: 31 * 86400 },
      { key: 'midnight', type: 'delay', until: '00:00' },
    ];
    expect(problemsOf(doc(...steps))).toEqual([
      problem('both', 'steps[0]', 'takes either seconds or until, not both'),
      problem('neither', 'steps[1]', 'needs seconds or until'),
      problem('zero', 'steps[2].seconds', /^must be a whole number from 1 to 2678400/),
      problem('fraction', 'steps[3].seconds', /^must be a whole number from 1 to 2678400/),
      problem('long', 'steps[4].seconds', /^must be a whole number from 1 to 2678400/),
      problem('hour', 'steps[5].until', /^must be a time as HH:MM/),
      problem('short', 'steps[6].until', /^must be a time as HH:MM/),
    ]);
  });

  it('requires positive ab_split weights', () => {
    const variants = [
      { weight: 0, next: 'end' },
      { weight: -1, next: 'end' },
      { weight: 2, next: 'end' },
    ];
    expect(problemsOf(doc({ key: 's', type: 'ab_split', variants }, end))).toEqual([
      problem('s', 'steps[0].variants[0].weight', /^must be greater than 0/),
      problem('s', 'steps[0].variants[1].weight', /^must be greater than 0/),
    ]);
    expect(problemsOf(doc({ key: 's', type: 'ab_split', variants: [] }))).toEqual([
      problem('s', 'steps[0].variants', 'must not be empty'),
    ]);
  });

  it('requires condition ops and values to agree', () => {
    const when = [
      { subject: 'fields.balance', op: 'gt', value: '100' },
      { subject: 'tracker.cost', op: 'lt' },
      { subject: 'fields.email', op: 'exists', value: true },
      { subject: 'tags', op: 'has', value: 5 },
      { subject: 'tags', op: 'has', value: 'not a tag' },
      { subject: 'fields.name', op: 'is' },
      { subject: 'tags', op: 'gt', value: 1 },
      { subject: 'tags', op: 'is', value: 'vip' },
      { subject: 'fields.name', op: 'has', value: 1 },
      { subject: 'fields.balance', op: 'gt', value: 0 },
    ];
    const path = (i: number) => `steps[0].branches[0].when[${i}]`;
    expect(problemsOf(doc({ key: 'c', type: 'condition', branches: [{ when, next: 'end' }] }, end))).toEqual([
      problem('c', path(0), '"gt" needs a number value'),
      problem('c', path(1), '"lt" needs a number value'),
      problem('c', path(2), '"exists" takes no value'),
      problem('c', path(3), '"has" on tags needs a tag text as value'),
      problem('c', path(4), '"has" on tags needs a tag text as value'),
      problem('c', path(5), '"is" needs a value'),
      problem('c', path(6), '"gt" does not apply to tags'),
      problem('c', path(7), /^"is" does not apply to tags/),
      problem('c', path(8), '"has" needs a string value'),
    ]);
  });

  it('accepts a condition with neither branches nor else (the dialog goes manual)', () => {
    expectValid(doc({ key: 'c', type: 'condition' }));
  });

  it('refuses a non-http webhook url and a GET body', () => {
    expect(
      problemsOf(doc({ key: 'w', type: 'send_webhook', method: 'GET', url: 'ftp://x.example/{{a}}', body: 'x=1' })),
    ).toEqual([
      problem('w', 'steps[0].url', 'must start with http:// or https://'),
      problem('w', 'steps[0].body', 'a GET request takes no body'),
    ]);
  });

  it('refuses an empty change_tags, a tag both added and removed, and an empty set_fields', () => {
    expect(
      problemsOf(
        doc(
          { key: 't', type: 'change_tags', add: [], next: 'u' },
          { key: 'u', type: 'change_tags', add: ['a', 'b'], remove: ['b'], next: 'f' },
          { key: 'f', type: 'set_fields', fields: {} },
        ),
      ),
    ).toEqual([
      problem('t', 'steps[0]', 'must add or remove at least one tag'),
      problem('u', 'steps[1].remove[0]', 'tag "b" is both added and removed'),
      problem('f', 'steps[2].fields', 'must set at least one field'),
    ]);
  });
});

describe('validateScript: loops without a wait', () => {
  const fields = (key: string, next: string) => ({ key, type: 'set_fields', fields: { n: 1 }, next });

  it('refuses a loop of steps that never wait, naming its keys', () => {
    expect(problemsOf(doc(fields('a', 'b'), fields('b', 'a')))).toEqual([
      problem('a', 'steps[0].next', 'loop without a wait: a → b → a'),
    ]);
  });

  it('follows condition branches, else, ab_split variants and a message next', () => {
    const steps = [
      {
        key: 'c',
        type: 'condition',
        branches: [{ when: [{ subject: 'tags', op: 'exists' }], next: 'end' }],
        else: 's',
      },
      {
        key: 's',
        type: 'ab_split',
        variants: [
          { weight: 1, next: 'end' },
          { weight: 1, next: 'm' },
        ],
      },
      { key: 'm', type: 'send_message', text: 'spam', buttons: [{ text: 'b', next: 'end' }], next: 'c' },
      end,
    ];
    expect(problemsOf(doc(...steps))).toEqual([problem('c', 'steps[0].else', 'loop without a wait: c → s → m → c')]);
  });

  it('refuses a step that leads to itself', () => {
    expect(
      problemsOf(doc({ key: 'w', type: 'send_webhook', method: 'POST', url: 'https://x.example', next: 'w' })),
    ).toEqual([problem('w', 'steps[0].next', 'loop without a wait: w → w')]);
  });

  it('reports each separate loop', () => {
    const problems = problemsOf(doc(fields('a', 'b'), fields('b', 'a'), fields('c', 'c')));
    expect(problems.map((p) => p.message)).toEqual(['loop without a wait: a → b → a', 'loop without a wait: c → c']);
  });

  it('accepts loops through a delay, an input, or a message waiting for a button', () => {
    expectValid(doc(fields('a', 'd'), { key: 'd', type: 'delay', seconds: 60, next: 'a' }));
    expectValid(doc(fields('a', 'i'), { key: 'i', type: 'input', text: 'Again?', field: 'answer', next: 'a' }));
    expectValid(
      doc(fields('a', 'm'), { key: 'm', type: 'send_message', text: 'Again?', buttons: [{ text: 'Yes', next: 'a' }] }),
    );
  });
});

describe('validateScript: templates', () => {
  it('checks every template-bearing text in its mode', () => {
    const calls: Array<[string, TemplateMode]> = [];
    const checkTemplate = (source: string, mode: TemplateMode) => {
      calls.push([source, mode]);
      return null;
    };
    const script = example();
    script.steps.push(
      {
        key: 'j',
        type: 'send_webhook',
        method: 'POST',
        url: 'https://x.example/j',
        body: '  [1, {{n}}]',
        headers: { 'X-A': 'a {{b}}' },
      },
      { key: 'p', type: 'send_webhook', method: 'PUT', url: 'https://x.example/p', body: 'n={{n}}' },
    );
    expectValid(script, { checkTemplate });
    expect(calls).toEqual([
      ['Hello, {{name}}!', 'html'],
      ['Go', 'html'],
      ['https://tracker.example/postback?subid={tracker.clickid}&chatid={chatId}', 'url'],
      ['Your e-mail?', 'html'],
      ['https://partner.example/signup?sub1={{tracker.clickid}}', 'html'],
      ['https://x.example/j', 'url'],
      ['  [1, {{n}}]', 'json'],
      ['a {{b}}', 'plain'],
      ['https://x.example/p', 'url'],
      ['n={{n}}', 'plain'],
    ]);
  });

  it('reports template errors with the step key and path', () => {
    const checkTemplate = (source: string) =>
      source.includes('{{') && !source.includes('}}') ? 'unclosed "{{"' : null;
    const script = example();
    script.steps[0]!.text = 'Hello, {{name!';
    script.steps.push({
      key: 'j',
      type: 'send_webhook',
      method: 'POST',
      url: 'https://x.example',
      headers: { 'X-Id': '{{chatId' },
    });
    expect(problemsOf(script, { checkTemplate })).toEqual([
      problem('welcome', 'steps[0].text', 'unclosed "{{"'),
      problem('j', 'steps[7].headers["X-Id"]', 'unclosed "{{"'),
    ]);
  });
});

describe('validateScript: every problem at once', () => {
  it('lists shape and semantic problems from all steps together', () => {
    const script = {
      start: 'missing',
      steps: [
        { key: 'a', type: 'send_message', text: 'x', buttons: [{ text: 'b' }], next: 'b' },
        { key: 'b', type: 'set_fields', fields: { n: 1 }, next: 'a' },
        { key: 'c', type: 'delay', seconds: 5, until: '10:00', next: 'gone' },
        { key: 'd', type: 'nope' },
        { key: 'e', type: 'input', text: 'x', field: 'f', extra: true },
        { key: 'b', type: 'set_status', status: 'auto' },
      ],
    };
    const checkTemplate = (source: string) => (source === 'x' ? 'too short' : null);
    expect(problemsOf(script, { checkTemplate })).toEqual([
      problem('d', 'steps[3].type', /^unknown step type "nope"/),
      problem('e', 'steps[4].extra', 'unknown property'),
      problem('b', 'steps[5].key', 'duplicate step key "b" (first used by steps[1])'),
      problem(undefined, 'start', 'names no step: "missing"'),
      problem('a', 'steps[0].buttons[0]', 'must have next or url'),
      problem('a', 'steps[0].text', 'too short'),
      problem('c', 'steps[2].next', 'names no step: "gone"'),
      problem('c', 'steps[2]', 'takes either seconds or until, not both'),
      problem('a', 'steps[0].next', 'loop without a wait: a → b → a'),
    ]);
  });

  it('lists at most 1000 problems and says how many more there are', () => {
    const steps = Array.from({ length: 500 }, (_, i) => ({ ...end, key: `s${i}`, a: 1, b: 2, c: 3 }));
    const problems = problemsOf(doc(...steps));
    expect(problems).toHaveLength(1001);
    expect(problems[999]).toEqual(problem('s333', 'steps[333].a', 'unknown property'));
    expect(problems[1000]).toEqual(problem(undefined, '', '500 more problems not listed'));
  });
});

describe('assignStepIds', () => {
  it('keeps the ids of keys that stay and makes new ones for new keys, in step order', () => {
    const script = validateScript(example());
    if (!script.ok) throw new Error('example must be valid');
    let n = 0;
    const ids = assignStepIds(
      script.script,
      new Map([
        ['wait', 'id-wait'],
        ['offer', 'id-offer'],
        ['removed', 'id-removed'],
      ]),
      () => `new-${++n}`,
    );
    expect(ids).toEqual([
      { key: 'welcome', id: 'new-1' },
      { key: 'postback', id: 'new-2' },
      { key: 'wait', id: 'id-wait' },
      { key: 'check', id: 'new-3' },
      { key: 'ask', id: 'new-4' },
      { key: 'offer', id: 'id-offer' },
      { key: 'vip', id: 'new-5' },
    ]);
  });
});
