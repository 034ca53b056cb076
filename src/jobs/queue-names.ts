/** Every BullMQ queue flowpost uses. */
export const QUEUES = {
  /** Every accepted input of a dialog (postbacks, Telegram updates): its job id is the input's acceptance order. */
  dialogUpdates: 'dialog-updates',
  /** Wake-ups of a dialog whose inputs wait (retries, sweeps), and delays' alarms. */
  stepRuns: 'step-runs',
  outboundWebhooks: 'outbound-webhooks',
  /** First attempts of deliveries recorded together, many to a job; their retries go to outbound-webhooks. */
  outboundBatches: 'outbound-webhook-batches',
  /** One job per broadcast that runs: it sends until the broadcast is done, paused or cancelled. */
  broadcasts: 'broadcasts',
} as const;
