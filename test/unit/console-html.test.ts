import { describe, expect, it } from 'vitest';
import { each, escapeHtml, html, toHtmlString } from '../../src/console/html.js';
import { groupProblems } from '../../src/console/pages/script.js';
import { safeNext } from '../../src/console/pages/sign-in.js';

describe('html', () => {
  it('escapes every interpolated text, in content and in attributes', () => {
    const evil = `<script>alert("x")</script>' onload='x' \`&`;
    expect(toHtmlString(html`<p title="${evil}">${evil}</p>`)).toBe(
      '<p title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39; onload=&#39;x&#39; &#96;&amp;">' +
        '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39; onload=&#39;x&#39; &#96;&amp;</p>',
    );
  });

  it('keeps fragments made by html as markup, and escapes look-alikes', () => {
    const inner = html`<b>${'a<b'}</b>`;
    expect(toHtmlString(html`<p>${inner}</p>`)).toBe('<p><b>a&lt;b</b></p>');
    const forged = { text: '<img src=x onerror=alert(1)>' } as never;
    expect(toHtmlString(html`<p>${forged}</p>`)).toBe('<p>[object Object]</p>');
  });

  it('renders lists, numbers and nothing for null, undefined and false', () => {
    expect(toHtmlString(html`${[1, '<', html`<i>x</i>`]}|${null}${undefined}${false}|${0}`)).toBe('1&lt;<i>x</i>||0');
    expect(toHtmlString(each(['a', '&'], (item, i) => html`<li data-i="${i}">${item}</li>`))).toBe(
      '<li data-i="0">a</li><li data-i="1">&amp;</li>',
    );
  });

  it('escapeHtml leaves plain text alone', () => {
    expect(escapeHtml('flowpost 1.0')).toBe('flowpost 1.0');
  });
});

describe('sign-in return paths', () => {
  it('are console paths only', () => {
    expect(safeNext('/console/bots/1/script?x=1')).toBe('/console/bots/1/script?x=1');
    expect(safeNext('/console')).toBe('/console');
    for (const bad of [
      '//evil.example/console',
      'https://evil.example/console',
      '/console\\@evil',
      '/consolex',
      '/console/sign-in?next=/x',
      undefined,
      ['/console'],
    ]) {
      expect(safeNext(bad)).toBe('/console/bots');
    }
  });
});

describe('script problems', () => {
  it('are grouped by step in step order, the document’s own first', () => {
    expect(
      groupProblems([
        { path: 'steps[2].text', step: 'c', message: 'bad template' },
        { path: 'start', message: 'unknown step' },
        { path: 'steps[0].next', step: 'a', message: 'unknown step "x"' },
        { path: 'steps[2]', message: 'no key' },
      ]),
    ).toEqual([
      { index: null, step: undefined, problems: [{ path: 'start', message: 'unknown step' }] },
      { index: 0, step: 'a', problems: [{ path: 'steps[0].next', message: 'unknown step "x"' }] },
      {
        index: 2,
        step: 'c',
        problems: [
          { path: 'steps[2].text', message: 'bad template' },
          { path: 'steps[2]', message: 'no key' },
        ],
      },
    ]);
  });
});
