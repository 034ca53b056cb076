import type { Context } from 'koa';
import { assetUrl } from './assets.js';
import { csrfInput } from './csrf.js';
import { each, html, toHtmlString, type SafeHtml } from './html.js';
import { consoleState } from './state.js';

/** Notices a page shows after a redirect (Post/Redirect/Get): fixed texts, chosen by `?notice=`. */
const NOTICES: Record<string, string> = {
  saved: 'Saved.',
  replayed: 'The delivery is queued again.',
  'signed-out': 'You are signed out.',
  queued: 'Queued: the dialog takes it in turn, within a second or so.',
};

export interface Crumb {
  href: string;
  label: string;
}

export interface PageOptions {
  /** The page's heading and (with "· flowpost") its document title. */
  title: string;
  body: SafeHtml;
  status?: number;
  /** Links from the bots list down to this page's parent. */
  crumbs?: Crumb[];
}

/** A path with `?notice=<name>` for the page answered after a redirect. */
export function withNotice(path: string, notice: 'saved' | 'replayed' | 'signed-out' | 'queued'): string {
  return `${path}${path.includes('?') ? '&' : '?'}notice=${notice}`;
}

function noticeOf(ctx: Context): string | undefined {
  const name = ctx.query.notice;
  return typeof name === 'string' ? NOTICES[name] : undefined;
}

/** Answers with a full console page: landmarks, a skip link, the header's sign-out form. */
export function sendPage(ctx: Context, options: PageOptions): void {
  const session = consoleState(ctx).session;
  const notice = noticeOf(ctx);
  const crumbs = options.crumbs ?? [];
  const page = html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${options.title} · flowpost</title>
        <link rel="stylesheet" href="${assetUrl('console.css')}" />
        <script src="${assetUrl('console.js')}" defer></script>
      </head>
      <body>
        <a class="skip-link" href="#main">Skip to content</a>
        <header class="site-header">
          <a class="brand" href="/console/bots">flowpost</a>
          ${
            session
              ? html`<nav aria-label="Main"><a href="/console/bots">Bots</a></nav>
                  <form method="post" action="/console/sign-out" class="sign-out">
                    ${csrfInput(session.csrf)}<button type="submit">Sign out</button>
                  </form>`
              : null
          }
        </header>
        <main id="main" tabindex="-1">
          ${
            crumbs.length > 0
              ? html`<nav aria-label="Breadcrumb" class="crumbs">
                  <ol>
                    ${each(crumbs, (crumb) => html`<li><a href="${crumb.href}">${crumb.label}</a></li>`)}
                    <li aria-current="page">${options.title}</li>
                  </ol>
                </nav>`
              : null
          }
          <h1>${options.title}</h1>
          ${notice ? html`<p class="notice" role="status">${notice}</p>` : null} ${options.body}
        </main>
      </body>
    </html> `;
  ctx.status = options.status ?? 200;
  ctx.type = 'text/html; charset=utf-8';
  ctx.body = toHtmlString(page);
}

/** A page that names what went wrong (a refused form, an unknown bot). */
export function sendErrorPage(ctx: Context, status: number, title: string, message: string, param?: string): void {
  sendPage(ctx, {
    title,
    status,
    body: html`<div class="error" role="alert">
        <p>${message}</p>
        ${param ? html`<p>Parameter: <code>${param}</code></p>` : null}
      </div>
      <p><a href="/console/bots">Back to the bots</a></p>`,
  });
}
