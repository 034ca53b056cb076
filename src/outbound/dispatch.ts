/**
 * One dispatch of an outbound webhook: at most one HTTP attempt, recorded. It goes through named
 * phases, each over a state that says what is known at that point:
 *
 *   prepareDispatch → makeHttpCall → handleSuccessfulDispatch | handleFailedDispatch
 *
 * A dispatch may end before its call: its host is busy, slow or short-circuited, the delivery is
 * already done, or its request can never be sent.
 */
import type { Dispatcher } from 'undici';
import type { Logger } from '../config/log.js';
import { storableText, type AttemptWrite, type DeliveryRecord, type DeliveryStore } from '../db/deliveries.js';
import type { OutboundDeliveryJob } from '../jobs/outbound-delivery-job.js';
import { CLOSED, type CircuitView } from './circuit-view.js';
import {
  attemptDelivery,
  classifyOutcome,
  deliveryHeaders,
  nextAttemptDelayMs,
  validateDeliveryRequest,
  type AttemptResult,
} from './delivery/index.js';
import { hostKey, type CircuitState, type HostPace, type LocalHostLimiter } from './fairness/index.js';
import type { SigningSecrets } from './signing-secrets.js';
import type { Slots } from './slots.js';
import { recordWebhookAttempt } from '../observability/outcomes.js';

/**
 * The job a dispatch runs in. A `chain` job takes this process's share of the host at once or
 * waits in Redis; a delivery of a `batch` job waits in line for its host a while, then for one of
 * the process's batch slots, and never waits behind a host known to be slow.
 */
export type DeliveryJobKind = 'chain' | 'batch';

/** What one process's dispatches share. */
export interface DispatchDeps {
  store: Pick<DeliveryStore, 'loadPending' | 'record'>;
  secrets: Pick<SigningSecrets, 'get'>;
  /** The guarded undici agent: private targets are refused at connect time. */
  agent: Dispatcher;
  userAgent: string;
  totalTimeoutMs: number;
  retrySchedule: number[];
  /** A host's share of this process's deliveries: a slow host holds at most so many at once. */
  local: LocalHostLimiter;
  circuit: CircuitView;
  pace: HostPace;
  /** Batched requests in flight at once in this process (chain jobs are bounded by their worker's concurrency). */
  batchSlots: Slots;
  random: () => number;
  log: Logger;
}

/** What became of one dispatch. */
export type DispatchResult =
  /** Delivered, failed for good, or nothing (left) to deliver. */
  | { kind: 'finished' }
  /** Not attempted because of its host (busy or short-circuited): a batch may wait as a whole. `attempts`: recorded in the chain so far. */
  | { kind: 'held_by_host'; delayMs: number; attempts: number }
  /** To be tried again after `delayMs`, in a chain job of its own. `attempts`: recorded in the chain so far. */
  | { kind: 'retry_later'; delayMs: number; attempts: number }
  /** The delivery is not as the job thought: carry on from what the database says. */
  | { kind: 'moved_on' };

const FINISHED: DispatchResult = { kind: 'finished' };
const MOVED_ON: DispatchResult = { kind: 'moved_on' };

/** How long a batched delivery waits in line for its host before it is held back with its batch. */
const BATCH_HOST_WAIT_MS = 1_000;

/** What a dispatch sends, as the job carries it or the database has it. */
export type DeliveryToDispatch = Pick<
  DeliveryRecord,
  'id' | 'botId' | 'messageId' | 'method' | 'url' | 'headers' | 'body' | 'chain' | 'attemptCount'
>;

/** Known once prepared: a valid request, a slot of its host held, and the circuit letting it through. */
interface PreparedDispatch {
  delivery: DeliveryToDispatch;
  method: string;
  url: URL;
  host: string;
  /** Closed, or half-open with this dispatch as its probe. */
  circuit: CircuitState;
}

/** Known once the call is made: what happened, as it is to be recorded. */
interface CompletedDispatch extends PreparedDispatch {
  result: AttemptResult;
  attempt: AttemptWrite['attempt'];
}

/** One dispatch of the job's delivery. */
export async function dispatchDelivery(
  job: OutboundDeliveryJob,
  kind: DeliveryJobKind,
  deps: DispatchDeps,
): Promise<DispatchResult> {
  const prepared = await prepareDispatch(job, kind, deps);
  if ('kind' in prepared) return prepared;
  const call = await makeHttpCall(prepared, kind, deps);
  const outcome = classifyOutcome({ status: call.result.status, error: call.result.errorKind });
  return outcome === 'success' ? handleSuccessfulDispatch(call, deps) : handleFailedDispatch(call, outcome, deps);
}

/** The delivery, its request checked, a slot of its host taken and the circuit asked; or why it is not sent now. */
async function prepareDispatch(
  job: OutboundDeliveryJob,
  kind: DeliveryJobKind,
  deps: DispatchDeps,
): Promise<PreparedDispatch | DispatchResult> {
  const turnedAway = turnAwayBeforeAnyIo(job, kind, deps);
  if (turnedAway) return turnedAway;
  const delivery = carriedDelivery(job) ?? (await deps.store.loadPending(job.deliveryId));
  if (!delivery) return FINISHED;
  const checked = validateDeliveryRequest({
    method: delivery.method,
    url: delivery.url,
    headers: delivery.headers,
    body: delivery.body,
  });
  if (!checked.ok) return refuseInvalidRequest(delivery, checked.reason, deps);
  const host = hostKey(checked.url);
  if (kind === 'batch' && deps.pace.isSlow(host)) return slowHost(host, delivery.attemptCount, deps);
  return admitToHost({ delivery, method: checked.method, url: checked.url, host }, kind, deps);
}

/**
 * The cheap gates, from what the job says of its host: this process's share of the host (a chain
 * job); a batch never waits behind a slow host (the delivery leaves for a chain job of its own).
 */
function turnAwayBeforeAnyIo(
  job: OutboundDeliveryJob,
  kind: DeliveryJobKind,
  deps: DispatchDeps,
): DispatchResult | null {
  if (!job.host) return null;
  if (kind === 'batch' && deps.pace.isSlow(job.host)) return slowHost(job.host, job.attempts ?? 0, deps);
  if (kind === 'chain' && deps.local.isFull(job.host)) return hostBusy(job.host, job.attempts ?? 0, deps);
  return null;
}

/** The delivery as the job carries it (its request, chain and count), if it does. */
function carriedDelivery(job: OutboundDeliveryJob): DeliveryToDispatch | null {
  const { request, chain, attempts } = job;
  if (!request || chain === undefined || attempts === undefined) return null;
  return {
    id: job.deliveryId,
    botId: request.botId,
    messageId: request.messageId,
    method: request.method,
    url: request.url,
    headers: request.headers,
    body: request.body,
    chain,
    attemptCount: attempts,
  };
}

/** A request that can never be sent fails for good, with the reason recorded. */
async function refuseInvalidRequest(
  delivery: DeliveryToDispatch,
  reason: string,
  deps: DispatchDeps,
): Promise<DispatchResult> {
  await deps.store.record({
    delivery,
    attempt: {
      startedAt: new Date(),
      durationMs: 0,
      status: null,
      error: reason,
      errorKind: 'invalid_request',
      excerpt: null,
    },
    outcome: { state: 'failed', nextAttemptAt: null },
  });
  deps.log.warn({ deliveryId: delivery.id, reason }, 'webhook delivery refused');
  return FINISHED;
}

/** A slot of the host, then the circuit (in that order: asking it may take the one probe of a half-open host). */
async function admitToHost(
  dispatch: Omit<PreparedDispatch, 'circuit'>,
  kind: DeliveryJobKind,
  deps: DispatchDeps,
): Promise<PreparedDispatch | DispatchResult> {
  const { host, delivery } = dispatch;
  const slot = kind === 'batch' ? deps.local.acquire(host, BATCH_HOST_WAIT_MS) : deps.local.tryAcquire(host);
  if (!(await slot)) return hostBusy(host, delivery.attemptCount, deps);
  let circuit: CircuitState;
  try {
    circuit = deps.circuit.trustedClosed(host) ? CLOSED : await deps.circuit.state(host);
  } catch (error) {
    deps.local.release(host);
    throw error;
  }
  if (circuit.state === 'open') {
    deps.local.release(host);
    return {
      kind: 'held_by_host',
      delayMs: circuit.retryAtMs - Date.now() + deps.random() * 5_000,
      attempts: delivery.attemptCount,
    };
  }
  return { ...dispatch, circuit };
}

// A host with all its slots taken: wait a while (spread out, so waiting jobs do not wake together).
function hostBusy(host: string, attempts: number, deps: DispatchDeps): DispatchResult {
  return { kind: 'held_by_host', delayMs: deps.pace.busyDelayMs(host, deps.random), attempts };
}

// A batched delivery to a host known to be slow: it waits as a chain job, never holding its batch.
function slowHost(host: string, attempts: number, deps: DispatchDeps): DispatchResult {
  return { kind: 'retry_later', delayMs: deps.pace.busyDelayMs(host, deps.random), attempts };
}

/** The HTTP call, signed; the host's slot (and a batched delivery's batch slot) is given back however it ends. */
async function makeHttpCall(
  dispatch: PreparedDispatch,
  kind: DeliveryJobKind,
  deps: DispatchDeps,
): Promise<CompletedDispatch> {
  const { delivery, host } = dispatch;
  if (kind === 'batch') await deps.batchSlots.acquire();
  const startedAt = new Date();
  let result: AttemptResult;
  try {
    result = await attemptDelivery({
      agent: deps.agent,
      method: dispatch.method,
      url: dispatch.url,
      prechecked: true,
      headers: deliveryHeaders(delivery, await deps.secrets.get(delivery.botId), deps.userAgent, startedAt),
      body: delivery.body,
      totalTimeoutMs: deps.totalTimeoutMs,
    });
  } finally {
    deps.local.release(host);
    if (kind === 'batch') deps.batchSlots.release();
  }
  deps.pace.observe(host, result.durationMs);
  recordWebhookAttempt(result);
  const attempt = {
    startedAt,
    durationMs: Math.round(result.durationMs),
    status: result.status ?? null,
    error: storableText(result.error),
    errorKind: result.errorKind ?? null,
    excerpt: storableText(result.excerpt),
  };
  return { ...dispatch, result, attempt };
}

/** A 2xx: the circuit hears of it (when worth it), and the delivery is recorded succeeded. */
async function handleSuccessfulDispatch(call: CompletedDispatch, deps: DispatchDeps): Promise<DispatchResult> {
  if (deps.circuit.successWorthReporting(call.host, call.circuit.state === 'half_open'))
    await deps.circuit.recordSuccess(call.host);
  const counted = await deps.store.record({
    delivery: call.delivery,
    attempt: call.attempt,
    outcome: { state: 'succeeded', nextAttemptAt: null },
  });
  return counted ? FINISHED : MOVED_ON;
}

/** Any other answer: the circuit hears of the host's trouble; the delivery retries later, or gives up. */
async function handleFailedDispatch(
  call: CompletedDispatch,
  outcome: 'retry' | 'final',
  deps: DispatchDeps,
): Promise<DispatchResult> {
  const { delivery, result } = call;
  if (isHostTrouble(result)) await deps.circuit.recordFailure(call.host);
  if (outcome === 'final') {
    return giveUp(call, deps, () =>
      deps.log.info(
        { deliveryId: delivery.id, status: result.status, error: result.error },
        'webhook delivery failed for good',
      ),
    );
  }
  const delay = nextAttemptDelayMs({
    attempt: delivery.attemptCount + 1,
    schedule: deps.retrySchedule,
    retryAfterHeader: result.retryAfter,
    random: deps.random,
    now: new Date(),
  });
  if (delay === null) {
    return giveUp(call, deps, () =>
      deps.log.info(
        { deliveryId: delivery.id, attempts: delivery.attemptCount + 1 },
        'webhook delivery exhausted its attempts',
      ),
    );
  }
  const counted = await deps.store.record({
    delivery,
    attempt: call.attempt,
    outcome: { state: 'pending', nextAttemptAt: new Date(Date.now() + delay) },
  });
  return counted ? { kind: 'retry_later', delayMs: delay, attempts: delivery.attemptCount + 1 } : MOVED_ON;
}

/** Timeouts, network errors and 5xx count against the host; other failures are the request's own. */
function isHostTrouble(result: AttemptResult): boolean {
  return result.errorKind === 'timeout' || result.errorKind === 'network' || (result.status ?? 0) >= 500;
}

/** Records the delivery failed (kept for replay); `announce` once it counted. */
async function giveUp(call: CompletedDispatch, deps: DispatchDeps, announce: () => void): Promise<DispatchResult> {
  const counted = await deps.store.record({
    delivery: call.delivery,
    attempt: call.attempt,
    outcome: { state: 'failed', nextAttemptAt: null },
  });
  if (!counted) return MOVED_ON;
  announce();
  return FINISHED;
}
