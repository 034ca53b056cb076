/** The queue dashboard (bull-board) at /admin/queues: every queue of the prefix, behind the admin key. */
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { KoaAdapter } from '@bull-board/koa';
import type { Queue } from 'bullmq';
import type { Middleware } from 'koa';

export const QUEUE_DASHBOARD_PATH = '/admin/queues';

/** bull-board's Koa app, mounted at QUEUE_DASHBOARD_PATH (authentication is the caller's). */
export function queueDashboard(queues: readonly Queue[]): Middleware {
  const serverAdapter = new KoaAdapter().setBasePath(QUEUE_DASHBOARD_PATH);
  createBullBoard({
    queues: queues.map((queue) => new BullMQAdapter(queue)),
    // @bull-board/koa pins its own copy of @bull-board/api: the same interface, declared twice.
    serverAdapter: serverAdapter as unknown as Parameters<typeof createBullBoard>[0]['serverAdapter'],
    options: { uiConfig: { boardTitle: 'flowpost queues' } },
  });
  return serverAdapter.registerPlugin() as Middleware;
}
