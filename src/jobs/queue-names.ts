/** Every BullMQ queue flowpost uses. */
export const QUEUES = {
  dialogUpdates: 'dialog-updates',
  telegramUpdates: 'telegram-updates',
  stepRuns: 'step-runs',
  outboundWebhooks: 'outbound-webhooks',
} as const;

export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];
