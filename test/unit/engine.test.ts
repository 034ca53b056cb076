import { describe, expect, it } from 'vitest';
import {
  buttonCallbackData,
  evaluateCondition,
  nextOccurrence,
  parseButtonCallbackData,
  runEngine,
  type EngineDialog,
  type EngineResult,
  type EngineScript,
  type Trigger,
} from '../../src/domain/engine/index.js';
import type { Condition, Step } from '../../src/domain/script/types.js';

const NOW = new Date('2026-05-01T12:00:00.000Z');
const idOf = (key: string) => `id-${key}`;

function script(steps: Step[], startKey = steps[0]?.key ?? 'missing'): EngineScript {
  return { startKey, steps: steps.map((step) => ({ id: idOf(step.key), step })) };
}

function dialog(overrides: Partial<EngineDialog> = {}): EngineDialog {
  return {
    chatId: 42,
    username: 'ann',
    name: 'Ann',
    createdAt: new Date('2026-05-01T11:00:00.000Z'),
    status: 'auto',
    stepId: null,
    fields: {},
    tracker: {},
    tags: [],
    ...overrides,
  };
}

interface RunOptions {
  trigger?: Trigger;
  dialog?: Partial<EngineDialog>;
  now?: Date;
  timezone?: string;
  random?: () => number;
  maxSteps?: number;
}

function run(steps: Step[], options: RunOptions = {}): EngineResult {
  return runEngine({
    script: script(steps),
    dialog: dialog(options.dialog),
    trigger: options.trigger ?? { kind: 'start' },
    now: options.now ?? NOW,
    timezone: options.timezone ?? 'UTC',
    random: options.random ?? (() => 0),
    ...(options.maxSteps === undefined ? {} : { maxSteps: options.maxSteps }),
  });
}

const texts = (result: EngineResult) =>
  result.effects.flatMap((effect) => (effect.type === 'send_message' ? [effect.text] : []));

const msg = (key: string, text: string, extra: Partial<Step> = {}): Step =>
  ({ key, type: 'send_message', text, ...extra }) as Step;

describe('start', () => {
  it('runs the start step and renders the greeting for HTML', () => {
    const result = run([msg('welcome', 'Hello, {{name}}!'), msg('other', 'not me')], {
      dialog: { name: 'Ann <3' },
    });
    expect(result.effects).toEqual([
      { type: 'send_message', stepId: idOf('welcome'), text: 'Hello, Ann &lt;3!', buttons: [] },
    ]);
    expect(result.stop).toBe('end');
    expect(result.changes).toEqual({ stepId: idOf('welcome') });
  });

  it('runs the step a postback preset before the user started instead of the start step', () => {
    const result = run([msg('welcome', 'Hello'), msg('promo', 'Promo for {{stepKey}}')], {
      dialog: { stepId: idOf('promo') },
    });
    expect(texts(result)).toEqual(['Promo for promo']);
    expect(result.changes.stepId).toBeUndefined(); // it stays on the preset step
  });

  it('falls back to the start step when the preset step no longer exists', () => {
    const result = run([msg('welcome', 'Hello')], { dialog: { stepId: 'gone' } });
    expect(texts(result)).toEqual(['Hello']);
    expect(result.changes.stepId).toBe(idOf('welcome'));
  });

  it('shows values set before the start in the first message', () => {
    const result = run([msg('welcome', 'ref {refID}, balance {{fields.userBalance}}, click {tracker.clickid}')], {
      dialog: { fields: { refID: '12345', userBalance: 5000 }, tracker: { clickid: 'c-9' } },
    });
    expect(texts(result)).toEqual(['ref 12345, balance 5000, click c-9']);
  });

  it('is ignored when the script has no start step', () => {
    const result = runEngine({
      script: { startKey: 'nope', steps: [] },
      dialog: dialog(),
      trigger: { kind: 'start' },
      now: NOW,
      timezone: 'UTC',
      random: () => 0,
    });
    expect(result).toMatchObject({ stop: 'ignored', effects: [], changes: {} });
  });
});

describe('send_message', () => {
  it('follows next through a chain and stops at the last step', () => {
    const result = run([
      msg('a', 'one', { next: 'b' }),
      msg('b', 'two', { next: 'c' }),
      msg('c', 'three'),
      msg('d', 'never'),
    ]);
    expect(texts(result)).toEqual(['one', 'two', 'three']);
    expect(result.effects.map((effect) => effect.stepId)).toEqual([idOf('a'), idOf('b'), idOf('c')]);
    expect(result.stop).toBe('end');
    expect(result.changes.stepId).toBe(idOf('c'));
  });

  it('waits for a button, and a press runs the button’s next', () => {
    const steps: Step[] = [
      {
        key: 'menu',
        type: 'send_message',
        text: 'Pick',
        buttons: [
          { text: 'Go {{name}}', next: 'go' },
          { text: 'Site', url: 'https://example.com/?u={{username}}' },
          { text: 'Stay', next: 'stay' },
        ],
      },
      msg('go', 'Going'),
      msg('stay', 'Staying'),
    ];
    const first = run(steps);
    expect(first.stop).toBe('waiting_buttons');
    expect(first.changes.stepId).toBe(idOf('menu'));
    expect(first.effects).toEqual([
      {
        type: 'send_message',
        stepId: idOf('menu'),
        text: 'Pick',
        buttons: [
          { text: 'Go Ann', callbackData: buttonCallbackData(idOf('menu'), 0) },
          { text: 'Site', url: 'https://example.com/?u=ann' },
          { text: 'Stay', callbackData: buttonCallbackData(idOf('menu'), 2) },
        ],
      },
    ]);

    const pressed = run(steps, {
      dialog: { stepId: idOf('menu') },
      trigger: { kind: 'button', stepId: idOf('menu'), index: 2 },
    });
    expect(texts(pressed)).toEqual(['Staying']);
    expect(pressed.changes.stepId).toBe(idOf('stay'));
    expect(pressed.stop).toBe('end');
  });

  it('ignores a press of a button that no longer exists or only links', () => {
    const steps: Step[] = [
      { key: 'menu', type: 'send_message', text: 'Pick', buttons: [{ text: 'Site', url: 'https://example.com' }] },
    ];
    for (const trigger of [
      { kind: 'button', stepId: idOf('menu'), index: 0 },
      { kind: 'button', stepId: idOf('menu'), index: 5 },
      { kind: 'button', stepId: 'gone', index: 0 },
    ] as const) {
      const result = run(steps, { trigger });
      expect(result).toMatchObject({ stop: 'ignored', effects: [], changes: {} });
    }
  });

  it('sends buttons and continues when the step has its own next', () => {
    const result = run([
      { key: 'menu', type: 'send_message', text: 'Pick', buttons: [{ text: 'Go', next: 'b' }], next: 'b' },
      msg('b', 'after'),
    ]);
    expect(texts(result)).toEqual(['Pick', 'after']);
    expect(result.stop).toBe('end');
  });

  it('drops a link button whose rendered url is not http(s)', () => {
    const result = run(
      [{ key: 'menu', type: 'send_message', text: 'Pick', buttons: [{ text: 'Link', url: '{{fields.link}}' }] }],
      { dialog: { fields: { link: 'javascript:alert(1)' } } },
    );
    expect(result.effects).toEqual([{ type: 'send_message', stepId: idOf('menu'), text: 'Pick', buttons: [] }]);
    expect(result.log.some((line) => line.includes('not an http(s) URL'))).toBe(true);
  });

  it('turns the dialog manual when a message fails to render', () => {
    // Longer than the template module's 64 Ki-character render limit.
    const result = run([msg('a', 'Hi {{fields.big}}')], { dialog: { fields: { big: 'y'.repeat(70_000) } } });
    expect(result.stop).toBe('manual');
    expect(result.effects).toEqual([]);
    expect(result.changes.status).toBe('manual');
  });
});

describe('input', () => {
  const steps: Step[] = [
    { key: 'ask', type: 'input', text: 'Your e-mail, {{name}}?', field: 'email', next: 'thanks' },
    msg('thanks', 'Thanks, we will write to {{fields.email}}'),
  ];

  it('asks and waits for the reply', () => {
    const result = run(steps);
    expect(result.effects).toEqual([
      { type: 'send_message', stepId: idOf('ask'), text: 'Your e-mail, Ann?', buttons: [] },
    ]);
    expect(result.stop).toBe('waiting_input');
    expect(result.changes).toEqual({ stepId: idOf('ask') });
  });

  it('stores the reply in the field and goes on with next', () => {
    const result = run(steps, { dialog: { stepId: idOf('ask') }, trigger: { kind: 'text', text: 'a&b@example.com' } });
    expect(texts(result)).toEqual(['Thanks, we will write to a&amp;b@example.com']);
    expect(result.changes).toEqual({ stepId: idOf('thanks'), fields: { email: 'a&b@example.com' } });
    expect(result.stop).toBe('end');
  });

  it('ignores text when the dialog is not on an input step', () => {
    for (const stepId of [null, idOf('thanks'), 'gone']) {
      const result = run(steps, { dialog: { stepId }, trigger: { kind: 'text', text: 'hi' } });
      expect(result).toMatchObject({ stop: 'ignored', effects: [], changes: {} });
    }
  });

  it('applies the input step’s finishStatus when the reply arrives, not when asking', () => {
    const withFinish: Step[] = [
      { key: 'ask', type: 'input', text: 'Q?', field: 'answer', next: 'thanks', finishStatus: 'manual' },
      msg('thanks', 'ok'),
    ];
    expect(run(withFinish).stop).toBe('waiting_input');
    const replied = run(withFinish, { dialog: { stepId: idOf('ask') }, trigger: { kind: 'text', text: 'yes' } });
    expect(replied.stop).toBe('manual');
    expect(replied.effects).toEqual([]);
    expect(replied.changes).toEqual({ status: 'manual', fields: { answer: 'yes' } });
  });
});

describe('delay', () => {
  it('waits a number of seconds and schedules the next step', () => {
    const result = run([{ key: 'wait', type: 'delay', seconds: 3600, next: 'later' }, msg('later', 'later')]);
    expect(result.effects).toEqual([
      {
        type: 'schedule',
        stepId: idOf('wait'),
        nextStepId: idOf('later'),
        runAt: new Date('2026-05-01T13:00:00.000Z'),
      },
    ]);
    expect(result.stop).toBe('waiting_delay');
    expect(result.changes.stepId).toBe(idOf('wait'));
  });

  it('schedules with a null next when the delay has none', () => {
    const result = run([{ key: 'wait', type: 'delay', seconds: 5 }]);
    expect(result.effects).toEqual([
      { type: 'schedule', stepId: idOf('wait'), nextStepId: null, runAt: new Date('2026-05-01T12:00:05.000Z') },
    ]);
  });

  it('waits until a wall-clock time in the bot’s time zone across the spring DST change', () => {
    // 00:30Z is 01:30 CET; at 01:00Z Berlin jumps from 02:00 CET to 03:00 CEST.
    const result = run([{ key: 'night', type: 'delay', until: '03:00', next: 'morning' }, msg('morning', 'hi')], {
      now: new Date('2026-03-29T00:30:00.000Z'),
      timezone: 'Europe/Berlin',
    });
    expect(result.effects).toEqual([
      {
        type: 'schedule',
        stepId: idOf('night'),
        nextStepId: idOf('morning'),
        runAt: new Date('2026-03-29T01:00:00.000Z'),
      },
    ]);
    expect(result.stop).toBe('waiting_delay');
  });

  it('the continuation (a step trigger) runs the step after the delay', () => {
    const result = run([{ key: 'wait', type: 'delay', seconds: 5, next: 'later' }, msg('later', 'later')], {
      dialog: { stepId: idOf('wait') },
      trigger: { kind: 'step', stepId: idOf('later') },
    });
    expect(texts(result)).toEqual(['later']);
    expect(result.changes.stepId).toBe(idOf('later'));
  });
});

describe('nextOccurrence', () => {
  const berlin = (iso: string, hhmm: string) => nextOccurrence(hhmm, 'Europe/Berlin', new Date(iso)).toISOString();

  it('finds today’s time, or tomorrow’s when it has passed', () => {
    expect(berlin('2026-05-01T05:00:00.000Z', '09:30')).toBe('2026-05-01T07:30:00.000Z'); // CEST
    expect(berlin('2026-05-01T08:00:00.000Z', '09:30')).toBe('2026-05-02T07:30:00.000Z');
    expect(berlin('2026-01-10T05:00:00.000Z', '09:30')).toBe('2026-01-10T08:30:00.000Z'); // CET
  });

  it('is strictly after now', () => {
    expect(berlin('2026-05-01T07:30:00.000Z', '09:30')).toBe('2026-05-02T07:30:00.000Z');
  });

  it('handles the spring-forward gap and the day after it', () => {
    expect(berlin('2026-03-29T00:30:00.000Z', '03:00')).toBe('2026-03-29T01:00:00.000Z');
    // 02:30 never shows that night: taken as 03:30 CEST, the moment shifted by the gap.
    expect(berlin('2026-03-29T00:30:00.000Z', '02:30')).toBe('2026-03-29T01:30:00.000Z');
    expect(berlin('2026-03-29T02:00:00.000Z', '03:00')).toBe('2026-03-30T01:00:00.000Z');
  });

  it('finds both instants of a time shown twice on the fall-back night', () => {
    // 25 Oct 2026: 03:00 CEST → 02:00 CET at 01:00Z, so 02:30 shows at 00:30Z and at 01:30Z.
    expect(berlin('2026-10-24T23:00:00.000Z', '02:30')).toBe('2026-10-25T00:30:00.000Z');
    expect(berlin('2026-10-25T00:45:00.000Z', '02:30')).toBe('2026-10-25T01:30:00.000Z');
    expect(berlin('2026-10-25T01:45:00.000Z', '02:30')).toBe('2026-10-26T01:30:00.000Z');
  });

  it('works east of UTC across midnight and refuses bad input', () => {
    expect(nextOccurrence('00:15', 'Asia/Tokyo', new Date('2026-05-01T14:00:00.000Z')).toISOString()).toBe(
      '2026-05-01T15:15:00.000Z',
    );
    expect(() => nextOccurrence('24:00', 'UTC', NOW)).toThrow(RangeError);
    expect(() => nextOccurrence('10:00', 'Mars/Olympus', NOW)).toThrow(RangeError);
  });
});

describe('condition', () => {
  const state = {
    fields: { balance: '5000', city: 'Berlin', vip: true, interests: ['crypto', 'forex'], blank: '  ', zero: 0 },
    tracker: { clickid: 'abc123' },
    tags: ['lead', 'fb'],
  };
  const holds = (subject: Condition['subject'], op: Condition['op'], value?: string | number | boolean) =>
    evaluateCondition(value === undefined ? { subject, op } : { subject, op, value }, state);

  it('is: equal as text, or as numbers when both are numeric', () => {
    expect(holds('fields.city', 'is', 'Berlin')).toBe(true);
    expect(holds('fields.city', 'is', 'berlin')).toBe(false);
    expect(holds('fields.balance', 'is', 5000)).toBe(true);
    expect(holds('fields.balance', 'is', '5000.0')).toBe(true);
    expect(holds('fields.vip', 'is', true)).toBe(true);
    expect(holds('tracker.clickid', 'is', 'abc123')).toBe(true);
    expect(holds('fields.missing', 'is', '')).toBe(false);
  });

  it('not: the negation of is; on tags, the tag is absent', () => {
    expect(holds('fields.city', 'not', 'Paris')).toBe(true);
    expect(holds('fields.city', 'not', 'Berlin')).toBe(false);
    expect(holds('fields.missing', 'not', 'x')).toBe(true);
    expect(holds('tags', 'not', 'vip')).toBe(true);
    expect(holds('tags', 'not', 'lead')).toBe(false);
  });

  it('gt / lt: numeric, false when not numeric', () => {
    expect(holds('fields.balance', 'gt', 100)).toBe(true);
    expect(holds('fields.balance', 'gt', 5000)).toBe(false);
    expect(holds('fields.balance', 'lt', 10000)).toBe(true);
    expect(holds('fields.zero', 'lt', 1)).toBe(true);
    expect(holds('fields.city', 'gt', 1)).toBe(false);
    expect(holds('fields.city', 'lt', 1)).toBe(false);
    expect(holds('fields.missing', 'lt', 1)).toBe(false);
  });

  it('has: text contains, list includes, tag present', () => {
    expect(holds('fields.city', 'has', 'erl')).toBe(true);
    expect(holds('fields.city', 'has', 'xyz')).toBe(false);
    expect(holds('fields.interests', 'has', 'forex')).toBe(true);
    expect(holds('fields.interests', 'has', 'fore')).toBe(false);
    expect(holds('tags', 'has', 'fb')).toBe(true);
    expect(holds('tags', 'has', 'vip')).toBe(false);
  });

  it('exists: present and not empty; on tags, any tag', () => {
    expect(holds('fields.city', 'exists')).toBe(true);
    expect(holds('fields.zero', 'exists')).toBe(true);
    expect(holds('fields.blank', 'exists')).toBe(false);
    expect(holds('fields.missing', 'exists')).toBe(false);
    expect(holds('tracker.clickid', 'exists')).toBe(true);
    expect(holds('tracker.sub1', 'exists')).toBe(false);
    expect(holds('tags', 'exists')).toBe(true);
    expect(evaluateCondition({ subject: 'tags', op: 'exists' }, { ...state, tags: [] })).toBe(false);
  });

  it('does not read inherited properties', () => {
    expect(holds('fields.toString', 'exists')).toBe(false);
    expect(holds('fields.constructor', 'exists')).toBe(false);
  });

  const router: Step[] = [
    {
      key: 'check',
      type: 'condition',
      branches: [
        {
          when: [
            { subject: 'fields.balance', op: 'gt', value: 100 },
            { subject: 'tags', op: 'has', value: 'lead' },
          ],
          next: 'vip',
        },
        { when: [{ subject: 'fields.balance', op: 'exists' }], next: 'low' },
      ],
      else: 'none',
    },
    msg('vip', 'vip'),
    msg('low', 'low'),
    msg('none', 'none'),
  ];

  it('takes the first branch whose every condition holds, else the else', () => {
    expect(texts(run(router, { dialog: { fields: { balance: 500 }, tags: ['lead'] } }))).toEqual(['vip']);
    expect(texts(run(router, { dialog: { fields: { balance: 500 } } }))).toEqual(['low']);
    expect(texts(run(router, { dialog: { fields: { balance: 50 }, tags: ['lead'] } }))).toEqual(['low']);
    expect(texts(run(router))).toEqual(['none']);
  });

  it('with no matching branch and no else turns the dialog manual', () => {
    const result = run([
      {
        key: 'check',
        type: 'condition',
        branches: [{ when: [{ subject: 'tags', op: 'has', value: 'vip' }], next: 'vip' }],
        finishStatus: 'auto',
      },
      msg('vip', 'vip'),
    ]);
    expect(result.stop).toBe('manual');
    expect(result.effects).toEqual([]);
    expect(result.changes).toEqual({ stepId: idOf('check'), status: 'manual' });
  });
});

describe('ab_split', () => {
  const steps: Step[] = [
    {
      key: 'split',
      type: 'ab_split',
      variants: [
        { weight: 1, next: 'a' },
        { weight: 3, next: 'b' },
      ],
    },
    msg('a', 'A'),
    msg('b', 'B'),
  ];

  it('picks variants in proportion to their weights', () => {
    const counts: Record<string, number> = { A: 0, B: 0 };
    for (let i = 0; i < 1000; i++) {
      const [text] = texts(run(steps, { random: () => i / 1000 }));
      counts[text!] = (counts[text!] ?? 0) + 1;
    }
    expect(counts).toEqual({ A: 250, B: 750 });
  });

  it('cuts at the weight boundaries and tolerates a random() of 1', () => {
    expect(texts(run(steps, { random: () => 0 }))).toEqual(['A']);
    expect(texts(run(steps, { random: () => 0.2499 }))).toEqual(['A']);
    expect(texts(run(steps, { random: () => 0.25 }))).toEqual(['B']);
    expect(texts(run(steps, { random: () => 1 }))).toEqual(['B']);
  });
});

describe('set_fields, change_tags, set_status, finishStatus', () => {
  it('changes are seen by later steps and reported as the net difference', () => {
    const result = run(
      [
        { key: 'set', type: 'set_fields', fields: { plan: 'gold-{{fields.refID}}', score: 7, same: 'x' }, next: 'tag' },
        { key: 'tag', type: 'change_tags', add: ['vip', 'lead'], remove: ['cold'], next: 'check' },
        {
          key: 'check',
          type: 'condition',
          branches: [
            {
              when: [
                { subject: 'fields.plan', op: 'is', value: 'gold-R1' },
                { subject: 'fields.score', op: 'gt', value: 5 },
                { subject: 'tags', op: 'has', value: 'vip' },
                { subject: 'tags', op: 'not', value: 'cold' },
              ],
              next: 'yes',
            },
          ],
          else: 'no',
        },
        msg('yes', 'plan {{fields.plan}}'),
        msg('no', 'no'),
      ],
      { dialog: { fields: { refID: 'R1', same: 'x' }, tags: ['lead', 'cold'] } },
    );
    expect(texts(result)).toEqual(['plan gold-R1']);
    expect(result.changes).toEqual({
      stepId: idOf('yes'),
      fields: { plan: 'gold-R1', score: 7 },
      addTags: ['vip'],
      removeTags: ['cold'],
    });
  });

  it('finishStatus manual stops the run after the step', () => {
    const result = run([msg('a', 'one', { next: 'b', finishStatus: 'manual' }), msg('b', 'two')]);
    expect(texts(result)).toEqual(['one']);
    expect(result.stop).toBe('manual');
    expect(result.changes).toEqual({ stepId: idOf('a'), status: 'manual' });
  });

  it('set_status blocked stops with blocked; set_status auto goes on', () => {
    const blocked = run([{ key: 's', type: 'set_status', status: 'blocked', next: 'b' }, msg('b', 'two')]);
    expect(blocked).toMatchObject({ stop: 'blocked', effects: [], changes: { status: 'blocked' } });
    const auto = run([{ key: 's', type: 'set_status', status: 'auto', next: 'b' }, msg('b', 'two')]);
    expect(texts(auto)).toEqual(['two']);
  });
});

describe('loop guard', () => {
  it('stops a cycle without a wait at maxSteps and hands the dialog to an operator', () => {
    const steps: Step[] = [
      { key: 'ping', type: 'send_webhook', method: 'GET', url: 'https://t.example/p', next: 'pong' },
      { key: 'pong', type: 'change_tags', add: ['x'], next: 'ping' },
    ];
    const result = run(steps, { maxSteps: 7 });
    expect(result.stop).toBe('step_limit');
    expect(result.effects).toHaveLength(4); // ping runs 4 times in 7 steps
    expect(result.changes.status).toBe('manual');
    expect(result.log.some((line) => line.includes('step limit of 7') && line.includes('ping, pong'))).toBe(true);
  });

  it('defaults to 50 steps', () => {
    const result = run([{ key: 'loop', type: 'set_fields', fields: { n: 1 }, next: 'loop' }]);
    expect(result.stop).toBe('step_limit');
    expect(result.log.filter((line) => line === 'loop: set_fields')).toHaveLength(50);
  });
});

describe('status', () => {
  const steps: Step[] = [
    { key: 'ask', type: 'input', text: 'Q?', field: 'answer', next: 'menu' },
    { key: 'menu', type: 'send_message', text: 'Pick', buttons: [{ text: 'Go', next: 'ask' }] },
  ];
  const triggers: Trigger[] = [
    { kind: 'start' },
    { kind: 'step', stepId: idOf('menu') },
    { kind: 'button', stepId: idOf('menu'), index: 0 },
    { kind: 'text', text: 'hello' },
  ];

  it('a manual dialog does nothing, and ignores the user’s text', () => {
    for (const trigger of triggers) {
      const result = run(steps, { dialog: { status: 'manual', stepId: idOf('ask') }, trigger });
      expect(result.effects).toEqual([]);
      expect(result.changes).toEqual({});
      expect(result.stop).toBe(trigger.kind === 'text' ? 'ignored' : 'manual');
    }
  });

  it('a blocked dialog does nothing', () => {
    for (const trigger of triggers) {
      const result = run(steps, { dialog: { status: 'blocked', stepId: idOf('ask') }, trigger });
      expect(result).toMatchObject({ stop: 'blocked', effects: [], changes: {} });
    }
  });
});

describe('send_webhook', () => {
  it('encodes values for the url, escapes them in a JSON body and keeps headers plain', () => {
    const result = run(
      [
        {
          key: 'hook',
          type: 'send_webhook',
          method: 'POST',
          url: 'https://t.example/pb?sub={tracker.clickid}&name={{name}}&chat={chatId}',
          headers: { 'X-Name': '{{name}}', 'X-Ref': '{refID}' },
          body: ' {"name":"{{name}}","ref":"{{fields.refID}}","at":"{{createdAt}}"}',
          next: 'done',
        },
        msg('done', 'done'),
      ],
      { dialog: { name: 'Tom & "Jerry"\nNew', fields: { refID: 'a&b=c' }, tracker: { clickid: 'x y/z' } } },
    );
    const [hook, done] = result.effects;
    expect(hook).toEqual({
      type: 'send_webhook',
      stepId: idOf('hook'),
      method: 'POST',
      url: 'https://t.example/pb?sub=x%20y%2Fz&name=Tom%20%26%20%22Jerry%22%0ANew&chat=42',
      headers: { 'X-Name': 'Tom & "Jerry" New', 'X-Ref': 'a&b=c' },
      body: ' {"name":"Tom & \\"Jerry\\"\\nNew","ref":"a&b=c","at":"2026-05-01T11:00:00.000Z"}',
    });
    expect(JSON.parse((hook as { body: string }).body)).toEqual({
      name: 'Tom & "Jerry"\nNew',
      ref: 'a&b=c',
      at: '2026-05-01T11:00:00.000Z',
    });
    expect(done).toMatchObject({ type: 'send_message', text: 'done' });
  });

  it('renders a non-JSON body as plain text and sends GET without a body', () => {
    const [put] = run(
      [{ key: 'h', type: 'send_webhook', method: 'PUT', url: 'https://t.example/?r={refID}', body: 'ref={refID}' }],
      {
        dialog: { fields: { refID: 'a&b' } },
      },
    ).effects;
    expect(put).toMatchObject({ url: 'https://t.example/?r=a%26b', body: 'ref=a&b', headers: {} });
    const [get] = run([{ key: 'h', type: 'send_webhook', method: 'GET', url: 'https://t.example/' }]).effects;
    expect(get).toMatchObject({ method: 'GET', body: null });
  });
});

describe('button callback data', () => {
  it('round-trips and stays within 64 bytes', () => {
    const stepId = '0b7e6a1c-3f4d-4e5a-9b8c-7d6e5f4a3b2c';
    for (const index of [0, 7, 99, 123456]) {
      const data = buttonCallbackData(stepId, index);
      expect(Buffer.byteLength(data, 'utf8')).toBeLessThanOrEqual(64);
      expect(parseButtonCallbackData(data)).toEqual({ stepId, index });
    }
  });

  it('refuses what it cannot encode and what it did not make', () => {
    expect(() => buttonCallbackData('x'.repeat(61), 1)).toThrow(RangeError);
    expect(buttonCallbackData('x'.repeat(60), 1)).toHaveLength(64);
    expect(() => buttonCallbackData('step', -1)).toThrow(RangeError);
    expect(() => buttonCallbackData('step', 1.5)).toThrow(RangeError);
    for (const data of [
      '',
      'hello',
      'b:',
      'b::1',
      'b:step',
      'b:step:',
      'b:step:01',
      'b:step:-1',
      'x:step:1',
      `b:${'x'.repeat(70)}:1`,
    ]) {
      expect(parseButtonCallbackData(data)).toBeNull();
    }
  });
});
