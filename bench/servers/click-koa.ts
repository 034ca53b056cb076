// The click ceiling: a bare Koa route that records a click as one INSERT into `clicks` (the same
// row flowpost writes, through a pool of flowpost's size) and answers 302 to the bot, nothing else.
import { randomBytes } from 'node:crypto';
import Koa from 'koa';
import pg from 'pg';

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL!, max: 10 });
const botId = process.env.BOT_ID!;
const campaignId = process.env.CAMPAIGN_ID!;
const app = new Koa();
app.use(async (ctx) => {
  if (!ctx.path.startsWith('/c/')) {
    ctx.status = 404;
    return;
  }
  const token = randomBytes(12).toString('base64url');
  const clickid = typeof ctx.query.clickid === 'string' ? ctx.query.clickid : token;
  await pool.query(
    `INSERT INTO clicks (bot_id, campaign_id, token, clickid, fields, ad) VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb)`,
    [
      botId,
      campaignId,
      token,
      clickid,
      JSON.stringify({ ad_name: ctx.query.ad_name, utm_source: ctx.query.utm_source, clickid }),
      JSON.stringify({ fbclid: ctx.query.fbclid }),
    ],
  );
  ctx.redirect(`https://t.me/flowpost_bench_bot?start=c_${token}`);
});
app.listen(Number(process.env.PORT), '127.0.0.1');
