export const OUTBOUND_DELIVERY_JOB = 'deliver';
export const OUTBOUND_BATCH_JOB = 'deliver-batch';

/** What to send: the rendered request, as recorded in the deliveries table. */
export interface DeliveryRequest {
  botId: string;
  /** Sent as `webhook-id` on every attempt. */
  messageId: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string | null;
}

/**
 * Deliver (or retry) one recorded outbound webhook call. The job carries its request when it is
 * small, so that an attempt reads nothing from the database; the database stays the record of
 * every attempt and of the delivery's state.
 */
export interface OutboundDeliveryJob {
  deliveryId: string;
  /** Which chain of attempts (a replay starts a new one). */
  chain?: number;
  /** Attempts recorded in this chain so far. */
  attempts?: number;
  /** The target's host (`hostname:port`), so a busy host's jobs wait without any I/O. */
  host?: string;
  request?: DeliveryRequest;
}

/**
 * The first attempts of deliveries recorded together (a burst of send_webhook steps): one job for
 * up to a hundred, so that a delivery costs a fraction of a queue operation. A delivery that must
 * retry leaves the batch for a job of its own on `outbound-webhooks`; those held back by their host
 * wait together, the batch delayed as one job.
 */
export interface OutboundBatchJob {
  deliveries: OutboundDeliveryJob[];
}
