// `npm run bench`: every figure beside its ceiling, measured in the same run on this machine.
import { benchApply } from './apply.js';
import { benchBroadcast } from './broadcast.js';
import { benchConversions } from './conversions.js';
import { benchIngest } from './ingest.js';
import { createBenchDatabase } from './lib/database.js';
import { benchOutbound } from './outbound.js';
import { benchTelegram } from './telegram.js';
import { benchTracker, type SteadyFigures } from './tracker.js';

const fmt = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const ratio = (a: number, b: number) => `${(a / b).toFixed(2)} ×`;
const cpu = (ms: number | null) => (ms === null ? '?' : `${ms.toFixed(2)} ms`);

const only = process.argv[2];
const database = await createBenchDatabase();
const lines: string[] = [];
try {
  if (!only || only === 'ingest') {
    const { bare, postback } = await benchIngest(database);
    for (const [name, figures] of [
      ['bare route', bare],
      ['postback route', postback],
    ] as const)
      if (figures.unexpected || figures.errors)
        throw new Error(`ingest, ${name}: ${figures.unexpected} answers other than 202, ${figures.errors} errors`);
    lines.push(
      '(a) ingest: postback route vs bare Koa + queue.add (64 connections, median of 3 alternating rounds)',
      `    bare route      ${fmt(bare.reqPerSec)} req/s   p50 ${bare.p50} ms   p99 ${bare.p99} ms`,
      `    postback route  ${fmt(postback.reqPerSec)} req/s   p50 ${postback.p50} ms   p99 ${postback.p99} ms`,
      `    ratio           ${ratio(postback.reqPerSec, bare.reqPerSec)}   (target ≥ 0.80 ×)`,
    );
    console.log(lines.slice(-4).join('\n'));
  }
  if (!only || only === 'apply') {
    const { noop, apply, concurrency } = await benchApply(database);
    lines.push(
      `(b) apply: ${fmt(apply.updates)} updates drained by one worker process (concurrency ${concurrency})`,
      `    no-op worker    ${fmt(noop.perSec)} jobs/s      (${noop.seconds.toFixed(2)} s)`,
      `    dialog updates  ${fmt(apply.perSec)} updates/s   (${apply.seconds.toFixed(2)} s)`,
      `    ratio           ${ratio(apply.perSec, noop.perSec)}   (target ≥ 0.50 ×)`,
    );
    console.log(lines.slice(-4).join('\n'));
  }
  if (!only || only === 'telegram') {
    const t = await benchTelegram(database);
    lines.push(
      '(c) messages: chains of send_message through one worker process to a fake Bot API (per-bot and per-chat limits lifted)',
      `    grammY sendMessage loop  ${fmt(t.bareSendsPerSec)} msgs/s`,
      `    script messages          ${fmt(t.messagesPerSec)} msgs/s`,
      `    ratio                    ${ratio(t.messagesPerSec, t.bareSendsPerSec)}   (target ≥ 0.70 ×)`,
      `(d) latency: postback stepId → sendMessage at the fake server, over ${fmt(t.latency[0]?.postbacks ?? 0)} started dialogs`,
      `    one sendMessage, alone   p50 ${t.bareSendP50.toFixed(1)} ms   p99 ${t.bareSendP99.toFixed(1)} ms`,
      ...t.latency.map(
        (l) =>
          `    at ${fmt(l.rate).padStart(5)} postbacks/s  p50 ${l.p50.toFixed(1)} ms   p99 ${l.p99.toFixed(1)} ms   max ${l.max.toFixed(1)} ms   (target at 1,000/s: p99 < 50 ms)`,
      ),
      ...t.latency.map(
        (l) =>
          `    CPU per postback at ${fmt(l.rate).padStart(5)}/s: worker ${cpu(l.cpuPerPostback.worker)}, web ${cpu(l.cpuPerPostback.web)}, load generator and fake Bot API ${cpu(l.cpuPerPostback.bench)}; machine ${l.machineBusyPct === null ? '?' : Math.round(l.machineBusyPct)} % busy`,
      ),
    );
    console.log(lines.slice(-(6 + 2 * t.latency.length)).join('\n'));
  }
  if (!only || only === 'outbound') {
    const o = await benchOutbound(database);
    lines.push(
      '(e) outbound: deliveries to a fast local sink through one worker process, each recorded with its attempt (5 alternating rounds after a warm-up; medians)',
      `    bare undici loop         ${fmt(o.bareRequestsPerSec)} req/s`,
      `    deliveries               ${fmt(o.deliveriesPerSec)} deliveries/s   (recorded together: batch jobs)`,
      `    ratio                    ${o.deliveryRatio.toFixed(2)} ×   (target ≥ 0.50 ×; median of the rounds: ${o.roundRatios.map((r) => r.toFixed(2)).join(', ')})`,
      `    one job per delivery     ${fmt(o.singleDeliveriesPerSec)} deliveries/s   (${ratio(o.singleDeliveriesPerSec, o.bareRequestsPerSec)})`,
      "(f) fairness: a fast host's delivery latency at 50/s for 30 s (record → arrival)",
      `    alone                    p50 ${o.fastP50Alone.toFixed(1)} ms   p99 ${o.fastP99Alone.toFixed(1)} ms`,
      `    beside a slow host       p50 ${o.fastP50WithSlow.toFixed(1)} ms   p99 ${o.fastP99WithSlow.toFixed(1)} ms   (1,000 queued, 5 s answers)`,
      `    ratio of p99             ${ratio(o.fastP99WithSlow, o.fastP99Alone)}   (target ≤ 2 ×)`,
    );
    console.log(lines.slice(-9).join('\n'));
  }
  if (!only || only === 'tracker') {
    const t = await benchTracker(database);
    const steady = (rounds: SteadyFigures[]) => {
      const each = (pick: (s: SteadyFigures) => number) => rounds.map((s) => pick(s).toFixed(1)).join(' / ');
      return `p50 ${each((s) => s.p50)} ms   p99 ${each((s) => s.p99)} ms   max ${each((s) => s.max)} ms`;
    };
    lines.push(
      '(g) clicks: GET /c/{id} (4 query parameters; one INSERT, 302) vs bare Koa + one INSERT (64 connections, median of 3 alternating rounds)',
      `    bare route      ${fmt(t.clickBare.reqPerSec)} req/s   p50 ${t.clickBare.p50} ms   p99 ${t.clickBare.p99} ms`,
      `    click redirect  ${fmt(t.clickRoute.reqPerSec)} req/s   p50 ${t.clickRoute.p50} ms   p99 ${t.clickRoute.p99} ms`,
      `    ratio           ${ratio(t.clickRoute.reqPerSec, t.clickBare.reqPerSec)}   (target ≥ 0.50 ×)`,
      `    at ${fmt(t.clickSteady[0]!.rate)} clicks/s, two rounds of ${fmt(t.clickSteady[0]!.clicks)} clicks each (bare then flowpost, then flowpost then bare)`,
      `      bare route      ${steady(t.clickSteadyBare)}`,
      `      click redirect  ${steady(t.clickSteady)}   (target p99 < 20 ms)`,
      '(h) postbacks by clickid of claimed clicks vs bare Koa + queue.add (64 connections, median of 3 alternating rounds)',
      `    bare route      ${fmt(t.postbackBare.reqPerSec)} req/s   p50 ${t.postbackBare.p50} ms   p99 ${t.postbackBare.p99} ms`,
      `    by chatId       ${fmt(t.postbackByChat.reqPerSec)} req/s   p50 ${t.postbackByChat.p50} ms   p99 ${t.postbackByChat.p99} ms   ratio ${ratio(t.postbackByChat.reqPerSec, t.postbackBare.reqPerSec)}   (the same postbacks as (a) sends them)`,
      `    clicks in LRU   ${fmt(t.postbackWarm.reqPerSec)} req/s   p50 ${t.postbackWarm.p50} ms   p99 ${t.postbackWarm.p99} ms   ratio ${ratio(t.postbackWarm.reqPerSec, t.postbackBare.reqPerSec)}   (target ≥ 0.60 ×)`,
      `    each click read ${fmt(t.postbackCold.reqPerSec)} req/s   p50 ${t.postbackCold.p50} ms   p99 ${t.postbackCold.p99} ms   ratio ${ratio(t.postbackCold.reqPerSec, t.postbackBare.reqPerSec)}   (target ≥ 0.60 ×)`,
    );
    console.log(lines.slice(-12).join('\n'));
  }
  if (!only || only === 'tracker' || only === 'conversions') {
    const c = await benchConversions(database);
    lines.push(
      `(i) conversions: ${fmt(c.conversions)} sales by clickid (64 connections) through one worker process to a destination's receiver`,
      `    accepted        ${fmt(c.acceptedPerSec)} conversions/s`,
      `    at the receiver ${fmt(c.deliveredPerSec)} conversions/s   (first call to last request received)`,
    );
    console.log(lines.slice(-3).join('\n'));
  }
  if (!only || only === 'broadcast') {
    const b = await benchBroadcast(database);
    const mb = (n: number) => n.toFixed(1);
    lines.push(
      `(j) broadcast: ${fmt(b.recipients)} recipients through one worker process to a fake Bot API enforcing ${fmt(b.rate)} sendMessage/s per bot (${b.enforcement}; 429 beyond)`,
      `    enforced rate            ${fmt(b.rate)} msgs/s   (flowpost's TELEGRAM_BOT_RATE_LIMIT ${fmt(b.flowpostRate)})`,
      `    broadcast sustained      ${fmt(b.sustainedPerSec, 1)} msgs/s   (${ratio(b.sustainedPerSec, b.rate)}; target ≥ 0.95 ×; 10–90 % of progress)   429s: ${b.throttled}   total ${b.seconds.toFixed(1)} s   sent ${fmt(b.sent)}`,
      `    the bot's sends, all     ${fmt(b.botPerSec, 1)} msgs/s   (${ratio(b.botPerSec, b.rate)}; the broadcast and the live messages, same span)`,
      `    live p50 without/with    ${b.liveWithout.p50.toFixed(1)} ms / ${b.liveWith.p50.toFixed(1)} ms   (postback stepId → sendMessage, ${b.liveRate}/s for ${fmt(b.liveWith.postbacks)} postbacks)`,
      `    live p99 without/with    ${b.liveWithout.p99.toFixed(1)} ms / ${b.liveWith.p99.toFixed(1)} ms   max ${b.liveWithout.max.toFixed(1)} ms / ${b.liveWith.max.toFixed(1)} ms`,
      `    worker RSS at 10/50/90 % ${mb(b.rssAt[0])} / ${mb(b.rssAt[1])} / ${mb(b.rssAt[2])} MB   (peak ${mb(b.largePeakRss)} MB at ${Math.round(100 * b.largePeakAt)} %; ${fmt(b.small)} recipients: peak ${mb(b.smallPeakRss)} MB)`,
    );
    console.log(lines.slice(-7).join('\n'));
  }
} finally {
  await database.drop();
}
