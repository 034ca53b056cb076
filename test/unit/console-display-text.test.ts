import { describe, expect, it } from 'vitest';
import { lineDisplayText, telegramHtmlToText } from '../../src/console/display-text.js';

describe('telegramHtmlToText', () => {
  it('drops tags and decodes the entities Telegram sends', () => {
    expect(telegramHtmlToText('Hello from the operator &lt;3')).toBe('Hello from the operator <3');
    expect(telegramHtmlToText('<b>Bold</b> &amp; <a href="https://x.test/?a=1&amp;b=2">link</a>')).toBe('Bold & link');
    expect(telegramHtmlToText('&quot;quoted&quot; &#39;single&#39; &apos;too&apos;')).toBe("\"quoted\" 'single' 'too'");
    expect(telegramHtmlToText('&#x1F600; &#65;')).toBe('😀 A');
  });

  it('decodes once: an escaped entity stays an entity', () => {
    expect(telegramHtmlToText('&amp;lt;b&amp;gt;')).toBe('&lt;b&gt;');
  });

  it('keeps what is not an entity as written', () => {
    expect(telegramHtmlToText('a & b &nbsp; &#xFFFFFFF; &#55296;')).toBe('a & b &nbsp; &#xFFFFFFF; &#55296;');
    expect(telegramHtmlToText('line 1\nline 2')).toBe('line 1\nline 2');
  });
});

describe('lineDisplayText', () => {
  it('shows a user’s text as typed and a sent line out of its HTML', () => {
    expect(lineDisplayText({ sender: 'user', text: 'a <b>x</b> &lt;' })).toBe('a <b>x</b> &lt;');
    expect(lineDisplayText({ sender: 'operator', text: 'Hi &lt;3' })).toBe('Hi <3');
    expect(lineDisplayText({ sender: 'script', text: '<i>Welcome</i>' })).toBe('Welcome');
    expect(lineDisplayText({ sender: 'user', text: null })).toBe('(no text)');
  });
});
