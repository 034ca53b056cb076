import type Router from '@koa/router';
import type { Context } from 'koa';
import type { DialogConversion } from '../../db/conversions.js';
import { listDialogConversions } from '../../db/conversions.js';
import { listDialogMessages } from '../../db/dialog-messages.js';
import { dialogsUpdatedAt, findDialog, type DialogView } from '../../db/dialogs.js';
import { listStepRefs } from '../../db/script-steps.js';
import type { FieldValue } from '../../domain/dialog.js';
import { DomainError, unknownDialogError } from '../../domain/errors.js';
import { operatorMessageSchema, releaseSchema } from '../../http/routes/operator.js';
import { chatIdParam, parseBody } from '../../http/validation.js';
import { performOperatorAction, type OperatorAction } from '../../operator/dialog-actions.js';
import type { RequestState } from '../../observability/request-context.js';
import { csrfInput } from '../csrf.js';
import { dialogLabel } from '../display-text.js';
import { option, timeTag } from '../fragments.js';
import { sendEventStream } from '../event-stream.js';
import { each, html, type SafeHtml } from '../html.js';
import { sendPage, withNotice } from '../layout.js';
import type { ConsoleDeps } from '../deps.js';
import { SESSION_COOKIE } from '../session.js';
import { botOf, formOf, sessionOf } from '../state.js';
import { displayLine, watchTranscript, type DisplayLine } from '../transcript-stream.js';
import { botCrumbs, botPath } from './bots.js';
import { dialogPath, statusBadge } from './dialogs.js';

/** The transcript a dialog page shows: its last lines; later ones arrive through the event stream. */
const TRANSCRIPT_LINES = 200;

const LINE_ID = /^\d{1,19}$/;

function fieldText(value: FieldValue): string {
  return Array.isArray(value) ? value.join(', ') : String(value);
}

function keyValues(id: string, title: string, entries: Array<[string, string]>, empty: string): SafeHtml {
  return html`<section aria-labelledby="${id}">
    <h2 id="${id}">${title}</h2>
    ${
      entries.length === 0
        ? html`<p class="hint">${empty}</p>`
        : html`<dl class="key-values">
            ${each(
              entries,
              ([key, value]) =>
                html`<div>
                  <dt><code>${key}</code></dt>
                  <dd>${value}</dd>
                </div>`,
            )}
          </dl>`
    }
  </section>`;
}

function conversionsTable(conversions: DialogConversion[]): SafeHtml {
  return html`<section aria-labelledby="conversions-heading">
    <h2 id="conversions-heading">Conversions</h2>
    ${
      conversions.length === 0
        ? html`<p class="hint">No conversions.</p>`
        : html`<div class="table-scroll" role="region" aria-label="Conversions" tabindex="0">
            <table>
              <thead>
                <tr>
                  <th scope="col">Status</th>
                  <th scope="col">Payout</th>
                  <th scope="col">Currency</th>
                  <th scope="col">Event</th>
                  <th scope="col">When</th>
                </tr>
              </thead>
              <tbody>
                ${each(
                  conversions,
                  (c) =>
                    html`<tr>
                      <td>${c.status}</td>
                      <td>${c.payout ?? '—'}</td>
                      <td>${c.currency ?? '—'}</td>
                      <td>${c.event}</td>
                      <td>${timeTag(c.createdAt)}</td>
                    </tr>`,
                )}
              </tbody>
            </table>
          </div>`
    }
  </section>`;
}

/** One transcript line; console.js builds the same markup for a line that arrives live. */
function transcriptLine(line: DisplayLine): SafeHtml {
  return html`<li class="line from-${line.sender}" data-line-id="${line.id}">
    <span class="who">${line.who}</span> ${timeTag(line.at)}
    <p class="line-text">${line.text}</p>
  </li>`;
}

function operatorActions(path: string, csrf: string, dialog: DialogView, steps: Array<{ key: string }>): SafeHtml {
  if (dialog.status !== 'manual') {
    return html`<form method="post" action="${path}/takeover" class="inline-form">
      ${csrfInput(csrf)}<button type="submit">Take over</button>
      <span class="hint">The script stops answering; you do.</span>
    </form>`;
  }
  return html`<form method="post" action="${path}/release" class="inline-form">
    ${csrfInput(csrf)}
    <div class="field">
      <label for="release-step">Hand back at step</label>
      <select id="release-step" name="stepId">
        <option value="">The current step${dialog.stepKey ? ` (${dialog.stepKey})` : ''}</option>
        ${each(steps, (step) => option(step.key, step.key))}
      </select>
    </div>
    <button type="submit">Hand back</button>
  </form>`;
}

function replyForm(path: string, csrf: string): SafeHtml {
  return html`<form method="post" action="${path}/reply" class="stack reply-form">
    ${csrfInput(csrf)}
    <label for="reply-text">Reply</label>
    <textarea id="reply-text" name="text" rows="3" maxlength="4096" required></textarea>
    <button type="submit">Send</button>
  </form>`;
}

function dialogFacts(dialog: DialogView, updatedAt: Date | undefined): SafeHtml {
  return html`<dl class="facts">
    <div>
      <dt>Chat id</dt>
      <dd><code>${dialog.chatId}</code></dd>
    </div>
    <div>
      <dt>Username</dt>
      <dd>${dialog.username ? `@${dialog.username}` : '—'}</dd>
    </div>
    <div>
      <dt>Status</dt>
      <dd>${statusBadge(dialog.status, 'dialog-status')}</dd>
    </div>
    <div>
      <dt>Step</dt>
      <dd><code id="dialog-step">${dialog.stepKey ?? '—'}</code></dd>
    </div>
    <div>
      <dt>Started</dt>
      <dd>${dialog.startedAt ? timeTag(dialog.startedAt) : 'not yet'}</dd>
    </div>
    ${
      updatedAt
        ? html`<div>
            <dt>Last activity</dt>
            <dd>${timeTag(updatedAt.toISOString())}</dd>
          </div>`
        : null
    }
    ${
      dialog.manualReason
        ? html`<div>
            <dt>Handed to an operator because</dt>
            <dd>${dialog.manualReason}</dd>
          </div>`
        : null
    }
  </dl>`;
}

/** The `:chatId` of a dialog route (its handlers take Koa's plain context). */
function chatIdOf(ctx: Context): number {
  return chatIdParam((ctx.params as Record<string, string | undefined>).chatId ?? '');
}

async function dialogOf(ctx: Context, deps: ConsoleDeps): Promise<DialogView> {
  const chatId = chatIdOf(ctx);
  const dialog = await findDialog(deps.management.db, botOf(ctx).id, chatId);
  if (!dialog) throw unknownDialogError();
  return dialog;
}

export function registerDialogPage(router: Router, deps: ConsoleDeps): void {
  const { db } = deps.management;

  router.get('/bots/:botId/dialogs/:chatId', async (ctx) => {
    const bot = botOf(ctx);
    const dialog = await dialogOf(ctx, deps);
    const ref = { botId: bot.id, chatId: dialog.chatId };
    const [lines, conversions, steps, updatedAt] = await Promise.all([
      listDialogMessages(db, ref, { afterId: null, limit: TRANSCRIPT_LINES, newest: true }),
      listDialogConversions(db, bot.id, dialog.chatId),
      listStepRefs(db, bot.id),
      dialogsUpdatedAt(db, bot.id, [dialog.chatId]),
    ]);
    const path = dialogPath(bot.id, dialog.chatId);
    const csrf = sessionOf(ctx).csrf;
    const lastId = lines.at(-1)?.id;
    const events = `${path}/events${lastId ? `?after=${lastId}` : ''}`;
    sendPage(ctx, {
      title: dialogLabel(dialog),
      crumbs: [...botCrumbs(bot), { href: botPath(bot.id, 'dialogs'), label: 'Dialogs' }],
      body: html`${dialogFacts(dialog, updatedAt.get(dialog.chatId))}
        <section aria-labelledby="operator-heading">
          <h2 id="operator-heading">Operator</h2>
          ${operatorActions(path, csrf, dialog, steps)}
        </section>
        <div class="dialog-layout">
          <section aria-labelledby="transcript-heading" class="transcript-section">
            <h2 id="transcript-heading">Transcript</h2>
            ${lines.length === TRANSCRIPT_LINES ? html`<p class="hint">The last ${TRANSCRIPT_LINES} lines.</p>` : null}
            <ol
              class="transcript"
              aria-live="polite"
              aria-relevant="additions"
              aria-labelledby="transcript-heading"
              tabindex="0"
              data-events="${events}"
              data-status="${dialog.status}"
            >
              ${each(lines.map(displayLine), transcriptLine)}
            </ol>
            ${lines.length === 0 ? html`<p class="hint transcript-empty">No messages yet.</p>` : null}
            ${dialog.status === 'manual' ? replyForm(path, csrf) : null}
          </section>
          <div class="dialog-details">
            ${keyValues(
              'fields-heading',
              'Fields',
              Object.entries(dialog.fields).map(([key, value]) => [key, fieldText(value)]),
              'No fields.',
            )}
            ${keyValues('tracker-heading', 'Tracker fields', Object.entries(dialog.tracker), 'No tracker fields.')}
            <section aria-labelledby="tags-heading">
              <h2 id="tags-heading">Tags</h2>
              ${
                dialog.tags.length === 0
                  ? html`<p class="hint">No tags.</p>`
                  : html`<ul class="tags">
                      ${each(dialog.tags, (tag) => html`<li>${tag}</li>`)}
                    </ul>`
              }
            </section>
            ${conversionsTable(conversions)}
          </div>
        </div>`,
    });
  });

  router.get('/bots/:botId/dialogs/:chatId/events', async (ctx) => {
    const bot = botOf(ctx);
    const dialog = await dialogOf(ctx, deps);
    // A reconnecting browser names the last line it has; a fresh page, the last one it showed.
    const given = ctx.get('last-event-id') || (typeof ctx.query.after === 'string' ? ctx.query.after : '');
    if (given !== '' && !LINE_ID.test(given))
      throw new DomainError('invalid', 'invalid_after', 'after must be a transcript line id', { param: 'after' });
    const sessionId = ctx.cookies.get(SESSION_COOKIE) ?? '';
    sendEventStream(ctx, (emit, signal) =>
      watchTranscript({
        db,
        botId: bot.id,
        chatId: dialog.chatId,
        afterId: given === '' ? null : given,
        signal,
        emit,
        // Signing out (or the session's idle expiry) ends its open streams too, within a heartbeat;
        // the stream itself does not renew the session.
        stillWanted: () => deps.sessions.isLive(sessionId),
      }),
    );
  });

  const act = async (ctx: Context, action: (form: ReadonlyMap<string, string>) => OperatorAction) => {
    const bot = botOf(ctx);
    const chatId = chatIdOf(ctx);
    const { requestId } = ctx.state as RequestState;
    await performOperatorAction(deps.management, bot, chatId, action(formOf(ctx)), requestId);
    ctx.status = 303;
    ctx.redirect(withNotice(dialogPath(bot.id, chatId), 'queued'));
  };

  router.post('/bots/:botId/dialogs/:chatId/takeover', (ctx) => act(ctx, () => ({ kind: 'takeover' })));

  router.post('/bots/:botId/dialogs/:chatId/release', (ctx) =>
    act(ctx, (form) => {
      const step = form.get('stepId') ?? '';
      const body = parseBody(releaseSchema, step === '' ? {} : { stepId: step });
      return { kind: 'release', ...(body.stepId !== undefined ? { stepId: body.stepId } : {}) };
    }),
  );

  router.post('/bots/:botId/dialogs/:chatId/reply', (ctx) =>
    act(ctx, (form) => ({
      kind: 'message',
      text: parseBody(operatorMessageSchema, { text: form.get('text') ?? '' }).text,
    })),
  );
}
