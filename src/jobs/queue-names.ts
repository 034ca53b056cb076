/** Every BullMQ queue flowpost uses. */
export const QUEUES = {
  dialogUpdates: 'dialog-updates',
  telegramUpdates: 'telegram-updates',
  stepRuns: 'step-runs',
  outboundWebhooks: 'outbound-webhooks',
  /** First attempts of deliveries recorded together, many to a job; their retries go to outbound-webhooks. */
  outboundBatches: 'outbound-webhook-batches',
} as const;

export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];
