/** Outbound webhook delivery: retry policy, signatures and headers, the SSRF guard, validation, one attempt. */
export {
  DEFAULT_RETRY_SCHEDULE_SECONDS,
  classifyOutcome,
  nextAttemptDelayMs,
  parseRetryAfter,
} from './retry-policy.js';
export { buildSignatureHeaders, generateSigningSecret, signPayload, verifySignature } from './signature.js';
export {
  TargetRefusedError,
  checkAddress,
  classifyAddress,
  createGuardedAgent,
  createGuardedConnector,
  isAllowed,
} from './target-guard.js';
export { MAX_BODY_BYTES, validateDeliveryRequest, type DeliveryRequest } from './request-validation.js';
export { deliveryHeaders } from './headers.js';
export { attemptDelivery, type AttemptResult } from './http-attempt.js';
