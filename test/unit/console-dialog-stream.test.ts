import { describe, expect, it } from 'vitest';
import { formatEvent } from '../../src/console/event-stream.js';
import { listingQuery } from '../../src/console/pages/dialogs.js';

describe('formatEvent', () => {
  it('frames a line with its id (a reconnect resumes after it), a dialog change and a heartbeat', () => {
    const line = {
      id: '42',
      sender: 'user' as const,
      who: 'User',
      text: 'two\nlines <b>',
      at: '2026-01-01T00:00:00.000Z',
    };
    expect(formatEvent({ type: 'line', line })).toBe(`id: 42\nevent: line\ndata: ${JSON.stringify(line)}\n\n`);
    // JSON keeps a newline of the text inside one data line.
    expect(formatEvent({ type: 'line', line }).split('\n')).toHaveLength(5);
    expect(formatEvent({ type: 'dialog', dialog: { status: 'manual', stepKey: null } })).toBe(
      'event: dialog\ndata: {"status":"manual","stepKey":null}\n\n',
    );
    expect(formatEvent({ type: 'heartbeat' })).toBe(': heartbeat\n\n');
  });
});

describe('listingQuery', () => {
  it('drops the empty fields a GET form sends and the notice, keeps the rest as given', () => {
    expect(
      listingQuery({ q: 'ann', status: '', step: '', tag: ['', 'vip', 'new'], notice: 'queued', 'field.city': 'Oslo' }),
    ).toEqual({ q: 'ann', tag: ['vip', 'new'], 'field.city': 'Oslo' });
    expect(listingQuery({ tag: ['', 'vip'] })).toEqual({ tag: 'vip' });
  });
});
