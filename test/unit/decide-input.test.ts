import { describe, expect, it } from 'vitest';
import type { EngineScript } from '../../src/domain/engine/index.js';
import { decideInput, type DecideInput } from '../../src/domain/inputs/decide.js';
import type { DialogSnapshot, InputEvent } from '../../src/domain/inputs/types.js';
import type { Step } from '../../src/domain/script/types.js';

const NOW = new Date('2026-05-01T12:00:00.000Z');
const idOf = (key: string) => `id-${key}`;

const SCRIPT: EngineScript = {
  startKey: 'hello',
  steps: (
    [
      { key: 'hello', type: 'send_message', text: 'Hello', next: 'wait' },
      { key: 'wait', type: 'delay', seconds: 60, next: 'ping' },
      { key: 'ping', type: 'send_message', text: 'Ping' },
      { key: 'ask', type: 'input', text: 'E-mail?', field: 'email', next: 'thanks' },
      { key: 'thanks', type: 'send_message', text: 'Thanks' },
      { key: 'vip', type: 'send_message', text: 'VIP', buttons: [{ text: 'Go', next: 'thanks' }] },
    ] as Step[]
  ).map((step) => ({ id: idOf(step.key), step })),
};

function dialog(overrides: Partial<DialogSnapshot['state']> = {}, rest: Partial<DialogSnapshot> = {}): DialogSnapshot {
  return {
    state: { status: 'auto', stepId: null, fields: {}, tracker: {}, tags: [], seqs: {}, lastSeq: 0, ...overrides },
    username: 'ann',
    name: 'Ann',
    startedAt: new Date('2026-05-01T11:00:00.000Z'),
    timer: null,
    ...rest,
  };
}

function decide(event: InputEvent, seq: number, snapshot: DialogSnapshot, script: EngineScript | null = SCRIPT) {
  const input: DecideInput = {
    chatId: 7,
    dialog: snapshot,
    seq,
    event,
    script,
    now: NOW,
    timezone: 'UTC',
    random: () => 0,
  };
  return decideInput(input);
}

const texts = (decision: ReturnType<typeof decideInput>) =>
  decision.effects.flatMap((effect) => (effect.type === 'send_message' ? [effect.text] : []));

describe('decideInput: moves', () => {
  it('a move runs its step when the dialog has started and is auto', () => {
    const decision = decide(
      { kind: 'move', stepId: idOf('thanks') },
      10,
      dialog({ stepId: idOf('hello'), seqs: { step: 3 } }),
    );
    expect(decision.outcome).toBe('ran');
    expect(texts(decision)).toEqual(['Thanks']);
    expect(decision.changes.stepId).toBe(idOf('thanks'));
  });

  it('a move before /start sets the step without running it', () => {
    const decision = decide({ kind: 'move', stepId: idOf('vip') }, 10, dialog({}, { startedAt: null }));
    expect(decision.outcome).toBe('recorded');
    expect(decision.effects).toEqual([]);
    expect(decision.changes.stepId).toBe(idOf('vip'));
  });

  it('a move older than the move that set the step is superseded', () => {
    const decision = decide(
      { kind: 'move', stepId: idOf('thanks') },
      5,
      dialog({ stepId: idOf('vip'), seqs: { step: 9 } }),
    );
    expect(decision.outcome).toBe('superseded');
    expect(decision.effects).toEqual([]);
    expect(decision.changes).toEqual({});
  });

  it('status manual with a step moves without running; an older status is ignored', () => {
    const manual = decide({ kind: 'move', stepId: idOf('thanks'), status: 'manual' }, 10, dialog());
    expect(manual.effects).toEqual([]);
    expect(manual.changes).toEqual({ status: 'manual', stepId: idOf('thanks') });
    const older = decide({ kind: 'move', status: 'blocked' }, 4, dialog({ seqs: { status: 6 } }));
    expect(older.changes).toEqual({});
  });

  it('a move whose step id is gone resolves by key, else the dialog turns manual with a reason', () => {
    const byKey = decide({ kind: 'move', stepId: 'id-old', stepKey: 'thanks' }, 10, dialog());
    expect(texts(byKey)).toEqual(['Thanks']);
    const gone = decide({ kind: 'move', stepId: 'id-old', stepKey: 'removed' }, 10, dialog());
    expect(gone.changes.status).toBe('manual');
    expect(gone.manualReason).toContain('removed');
    expect(gone.effects).toEqual([]);
  });
});

describe('decideInput: Telegram inputs', () => {
  it('/start runs the start step, or a step a postback set before', () => {
    const fresh = decide(
      { kind: 'start', user: { username: 'ann', name: 'Ann', firstName: 'Ann', lastName: null } },
      3,
      dialog({}, { startedAt: null }),
    );
    expect(texts(fresh)).toEqual(['Hello']);
    expect(fresh.started?.name).toBe('Ann');
    const preset = decide(
      { kind: 'start', user: { username: null, name: null, firstName: null, lastName: null } },
      3,
      dialog({ stepId: idOf('vip'), seqs: { step: 2 } }, { startedAt: null }),
    );
    expect(texts(preset)).toEqual(['VIP']);
  });

  it("a first /start older than a move that waited for it runs that move with the move's order", () => {
    const user = { username: null, name: null, firstName: null, lastName: null };
    const decision = decide(
      { kind: 'start', user },
      3,
      dialog({ stepId: idOf('hello'), seqs: { step: 8 } }, { startedAt: null }),
    );
    expect(texts(decision)).toEqual(['Hello']);
    expect(decision.order).toBe(8);
    expect(decision.timer?.scheduledBy).toBe(8);
  });

  it('a reply to an input step is stored; one older than a newer move is kept as a message, not run', () => {
    const reply = decide({ kind: 'text', text: 'a@b.example' }, 8, dialog({ stepId: idOf('ask'), seqs: { step: 5 } }));
    expect(reply.changes.fields).toEqual({ email: 'a@b.example' });
    expect(texts(reply)).toEqual(['Thanks']);
    const late = decide({ kind: 'text', text: 'late' }, 4, dialog({ stepId: idOf('vip'), seqs: { step: 5 } }));
    expect(late.outcome).toBe('superseded');
    expect(late.incoming).toEqual({ text: 'late' });
  });

  it('a button press older than the newest move is superseded', () => {
    const data = `b:${idOf('vip')}:0`;
    expect(texts(decide({ kind: 'button', data }, 9, dialog({ stepId: idOf('vip'), seqs: { step: 5 } })))).toEqual([
      'Thanks',
    ]);
    expect(decide({ kind: 'button', data }, 4, dialog({ stepId: idOf('vip'), seqs: { step: 5 } })).outcome).toBe(
      'superseded',
    );
  });

  it("blocked sets the status with the input's order", () => {
    expect(decide({ kind: 'blocked' }, 9, dialog({ seqs: { status: 3 } })).changes).toEqual({ status: 'blocked' });
    expect(decide({ kind: 'blocked' }, 2, dialog({ seqs: { status: 3 } })).changes).toEqual({});
  });
});

describe('decideInput: delays', () => {
  it("a run that reaches a delay sets the dialog's timer, owned by its input", () => {
    const decision = decide(
      { kind: 'move', stepId: idOf('hello') },
      12,
      dialog({ stepId: idOf('thanks'), seqs: { step: 3 } }),
    );
    expect(decision.timer).toEqual({
      at: '2026-05-01T12:01:00.000Z',
      scheduledBy: 12,
      stepId: idOf('ping'),
      stepKey: 'ping',
    });
  });

  it('a delay fires only while the run that set it is the newest move', () => {
    const timer = { at: NOW.toISOString(), scheduledBy: 12, stepId: idOf('ping'), stepKey: 'ping' };
    const waiting = dialog({ stepId: idOf('wait'), seqs: { step: 12 } }, { timer });
    const fired = decide({ kind: 'timer', scheduledBy: 12, stepId: idOf('ping'), stepKey: 'ping' }, 20, waiting);
    expect(texts(fired)).toEqual(['Ping']);
    expect(fired.timer).toBeNull();
    const movedOn = dialog({ stepId: idOf('vip'), seqs: { step: 15 } }, { timer });
    const stale = decide({ kind: 'timer', scheduledBy: 12, stepId: idOf('ping'), stepKey: 'ping' }, 20, movedOn);
    expect(stale.outcome).toBe('superseded');
    expect(stale.effects).toEqual([]);
  });

  it('a run that ends on the step it began at still claims the step, so its delay is not stale', () => {
    const loop: EngineScript = {
      startKey: 'wait',
      steps: ([{ key: 'wait', type: 'delay', seconds: 5, next: 'wait' }] as Step[]).map((step) => ({
        id: idOf(step.key),
        step,
      })),
    };
    const timer = { at: NOW.toISOString(), scheduledBy: 4, stepId: idOf('wait'), stepKey: 'wait' };
    const decision = decide(
      { kind: 'timer', scheduledBy: 4, stepId: idOf('wait'), stepKey: 'wait' },
      9,
      dialog({ stepId: idOf('wait'), seqs: { step: 4 } }, { timer }),
      loop,
    );
    expect(decision.changes.stepId).toBe(idOf('wait'));
    expect(decision.timer?.scheduledBy).toBe(9);
  });
});

describe('decideInput: a /start through a campaign link', () => {
  const user = { username: 'ann', name: 'Ann', firstName: 'Ann', lastName: null };
  const click = { clickid: 'k-1', fields: { clickid: 'k-1', ad_name: 'spring' }, startStepKey: null };

  it("writes the click's tracker fields with the /start's order, and keeps a newer postback's value", () => {
    const decision = decide(
      { kind: 'start', user, click },
      20,
      dialog({ tracker: { ad_name: 'from-postback' }, seqs: { 't:ad_name': 25 } }, { startedAt: null }),
    );
    expect(decision.changes.tracker).toEqual({ clickid: 'k-1' });
    expect(decision.outcome).toBe('ran');
  });

  it("begins a new dialog at the campaign's start step, and a returning user's run too", () => {
    const atVip = { ...click, startStepKey: 'vip' };
    expect(texts(decide({ kind: 'start', user, click: atVip }, 5, dialog({}, { startedAt: null })))).toEqual(['VIP']);
    expect(
      texts(decide({ kind: 'start', user, click: atVip }, 9, dialog({ stepId: idOf('ping'), seqs: { step: 4 } }))),
    ).toEqual(['VIP']);
  });

  it('a step a postback set before the first /start still runs first; an unknown start step falls back', () => {
    const atVip = { ...click, startStepKey: 'vip' };
    const preset = dialog({ stepId: idOf('thanks'), seqs: { step: 3 } }, { startedAt: null });
    expect(texts(decide({ kind: 'start', user, click: atVip }, 5, preset))).toEqual(['Thanks']);
    const gone = { ...click, startStepKey: 'no-such-step' };
    expect(texts(decide({ kind: 'start', user, click: gone }, 5, dialog({}, { startedAt: null })))[0]).toBe('Hello');
  });
});
