import { describe, expect, it } from 'vitest';
import { renderForRecipient } from '../../src/domain/broadcasts/content.js';

const CONTEXT = {
  chatId: 42,
  username: 'ann',
  name: 'Ann <A>',
  createdAt: new Date('2026-01-01T10:00:00.000Z'),
  stepId: null,
  stepKey: 'welcome',
  status: 'auto',
  fields: { city: 'Oslo' },
  tracker: { clickid: 'c1' },
};

describe('renderForRecipient', () => {
  it('renders the text for HTML and the buttons as plain text, leaving out a link that is not http(s)', () => {
    const rendered = renderForRecipient(
      {
        kind: 'message',
        text: 'Hi {{name}} from {{fields.city}}',
        buttons: [
          { text: 'Go {{name}}', url: 'https://example.com/?c={{tracker.clickid}}' },
          { text: 'Bad', url: 'javascript:{{name}}' },
        ],
      },
      CONTEXT,
    );
    expect(rendered).toEqual({
      ok: true,
      text: 'Hi Ann &lt;A&gt; from Oslo',
      buttons: [{ text: 'Go Ann <A>', url: 'https://example.com/?c=c1' }],
    });
  });

  it('refuses a text that renders empty', () => {
    expect(renderForRecipient({ kind: 'message', text: '{{fields.none}}', buttons: [] }, CONTEXT)).toEqual({
      ok: false,
      reason: 'the text rendered empty',
    });
  });
});
