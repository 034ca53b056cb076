export const OUTBOUND_DELIVERY_JOB = 'deliver';

/** Deliver (or retry) one recorded outbound webhook call. */
export interface OutboundDeliveryJob {
  deliveryId: string;
}
