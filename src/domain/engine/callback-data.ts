/** Telegram callback data of a `next` button: which step's button was pressed. */

/** Telegram's limit on callback_data, in bytes. */
const MAX_CALLBACK_DATA_BYTES = 64;

const PREFIX = 'b:';
const INDEX = /^(?:0|[1-9]\d{0,5})$/;

/**
 * `b:<stepId>:<index>`; with a uuid step id at most 2 + 36 + 1 + 6 = 45 bytes.
 * @throws RangeError when the step id is empty, the index is not a whole number ≥ 0,
 *   or the result would exceed 64 bytes.
 */
export function buttonCallbackData(stepId: string, index: number): string {
  if (stepId === '') throw new RangeError('button callback data needs a step id');
  if (!Number.isSafeInteger(index) || index < 0 || !INDEX.test(String(index))) {
    throw new RangeError(`invalid button index ${index}`);
  }
  const data = `${PREFIX}${stepId}:${index}`;
  if (Buffer.byteLength(data, 'utf8') > MAX_CALLBACK_DATA_BYTES) {
    throw new RangeError(`button callback data is longer than ${MAX_CALLBACK_DATA_BYTES} bytes`);
  }
  return data;
}

/** The step id and button index in callback data made by {@link buttonCallbackData}, or null. */
export function parseButtonCallbackData(data: string): { stepId: string; index: number } | null {
  if (typeof data !== 'string' || !data.startsWith(PREFIX)) return null;
  if (Buffer.byteLength(data, 'utf8') > MAX_CALLBACK_DATA_BYTES) return null;
  const colon = data.lastIndexOf(':');
  if (colon < PREFIX.length + 1) return null;
  const stepId = data.slice(PREFIX.length, colon);
  const index = data.slice(colon + 1);
  if (!INDEX.test(index)) return null;
  return { stepId, index: Number(index) };
}

const STEP_PREFIX = 's:';

/**
 * `s:<stepId>`: a button that moves the dialog to a step when pressed (a broadcast's `next`
 * button, which belongs to no step of the script).
 */
export function stepCallbackData(stepId: string): string {
  if (stepId === '') throw new RangeError('step callback data needs a step id');
  const data = `${STEP_PREFIX}${stepId}`;
  if (Buffer.byteLength(data, 'utf8') > MAX_CALLBACK_DATA_BYTES) {
    throw new RangeError(`step callback data is longer than ${MAX_CALLBACK_DATA_BYTES} bytes`);
  }
  return data;
}

/** The step id in callback data made by {@link stepCallbackData}, or null. */
export function parseStepCallbackData(data: string): string | null {
  if (typeof data !== 'string' || !data.startsWith(STEP_PREFIX)) return null;
  const stepId = data.slice(STEP_PREFIX.length);
  return stepId !== '' && Buffer.byteLength(data, 'utf8') <= MAX_CALLBACK_DATA_BYTES ? stepId : null;
}
