import { DomainError } from '../errors.js';
import { CLICK_ID_PATTERN } from './click-request.js';

export const CONVERSION_STATUSES = ['lead', 'sale', 'rejected'] as const;
export type ConversionStatus = (typeof CONVERSION_STATUSES)[number];

/** A conversion as the network sent it, checked. */
export interface ConversionRequest {
  clickid: string;
  status: ConversionStatus;
  /** Decimal text as sent (normalised), null when none was sent. */
  payout: string | null;
  currency: string | null;
  /** The network's conversion id; '' when none was sent (a repeat sale then is a repeat). */
  tid: string;
  event: string;
}

const ALIASES: Record<string, readonly string[]> = {
  clickid: ['clickid', 'subid', 'click_id', 'cid'],
  payout: ['payout', 'revenue', 'sum'],
  tid: ['tid', 'txid', 'transaction_id', 'action_id'],
  event: ['event', 'goal'],
};

/** Parameter names a conversion reads itself; the rest are read as in `updateDialog`. */
export const CONVERSION_PARAMS: ReadonlySet<string> = new Set([
  ...Object.values(ALIASES).flat(),
  'status',
  'currency',
  'lead_status',
  'sale_status',
  'rejected_status',
]);

const PAYOUT = /^-?\d{1,12}(?:\.\d{1,8})?$/;
const CURRENCY = /^[A-Za-z]{3}$/;
const TOKEN = /^[A-Za-z0-9_.:-]{1,100}$/;

type Params = ReadonlyMap<string, string>;

/** A tid or event, checked: 1-100 characters of [A-Za-z0-9_.:-]. */
function pickToken(params: Params, name: 'tid' | 'event'): { param: string; value: string } | null {
  const picked = pick(params, name);
  if (picked && !TOKEN.test(picked.value)) {
    throw new DomainError(
      'invalid',
      `invalid_${name}`,
      `${picked.param} must be 1-100 characters of A-Z, a-z, 0-9, "_", ".", ":" or "-"`,
      { param: picked.param },
    );
  }
  return picked;
}

function pick(params: Params, name: keyof typeof ALIASES): { param: string; value: string } | null {
  for (const alias of ALIASES[name]!) {
    const value = params.get(alias);
    if (value !== undefined && value !== '') return { param: alias, value };
  }
  return null;
}

/**
 * The status a network's word means: first the request's own lists (`lead_status=1,2`, …: Affise
 * sends numbers, Keitaro its own words), then flowpost's three words; no status means `sale`.
 */
export function mapStatus(params: Params): ConversionStatus | null {
  const word = params.get('status');
  if (word === undefined || word === '') return 'sale';
  for (const status of CONVERSION_STATUSES) {
    const list = params.get(`${status}_status`);
    if (list && list.split(',').some((item) => item.trim() === word)) return status;
  }
  const lower = word.toLowerCase();
  return (CONVERSION_STATUSES as readonly string[]).includes(lower) ? (lower as ConversionStatus) : null;
}

/** Reads a conversion's own parameters; a refusal names the parameter at fault. */
export function readConversion(params: Params): ConversionRequest {
  const clickid = pick(params, 'clickid');
  if (!clickid)
    throw new DomainError('invalid', 'missing_clickid', 'clickid is required (or subid, click_id, cid)', {
      param: 'clickid',
    });
  if (!CLICK_ID_PATTERN.test(clickid.value)) {
    throw new DomainError(
      'invalid',
      'invalid_clickid',
      `${clickid.param} must be 1-100 characters of A-Z, a-z, 0-9, "_", "." or "-"`,
      { param: clickid.param },
    );
  }
  const status = mapStatus(params);
  if (!status) {
    throw new DomainError(
      'unprocessable',
      'unknown_status',
      `status "${params.get('status')}" is not lead, sale or rejected, nor in lead_status, sale_status or rejected_status`,
      { param: 'status' },
    );
  }
  const payout = pick(params, 'payout');
  if (payout && !PAYOUT.test(payout.value.trim())) {
    throw new DomainError('invalid', 'invalid_payout', `${payout.param} must be a number`, { param: payout.param });
  }
  const currency = params.get('currency');
  if (currency !== undefined && currency !== '' && !CURRENCY.test(currency)) {
    throw new DomainError('invalid', 'invalid_currency', 'currency must be a three-letter ISO 4217 code', {
      param: 'currency',
    });
  }
  const tid = pickToken(params, 'tid');
  const event = pickToken(params, 'event');
  return {
    clickid: clickid.value,
    status,
    payout: payout ? normalisePayout(payout.value.trim()) : null,
    currency: currency ? currency.toUpperCase() : null,
    tid: tid?.value ?? '',
    event: event?.value ?? 'default',
  };
}

function normalisePayout(text: string): string {
  const [whole = '0', fraction = ''] = text.split('.');
  const sign = whole.startsWith('-') ? '-' : '';
  const digits = whole.replace('-', '').replace(/^0+(?=\d)/, '');
  const frac = fraction.replace(/0+$/, '');
  const value = frac ? `${digits}.${frac}` : digits;
  return value === '0' ? '0' : sign + value;
}

/** The conversion's state as recorded. */
export interface RecordedConversion {
  status: ConversionStatus;
  payout: string | null;
  currency: string | null;
}

export type ConversionMove =
  | { kind: 'new' }
  | { kind: 'moved'; from: ConversionStatus }
  | { kind: 'duplicate' }
  | { kind: 'ignored'; reason: string };

// Keitaro's allowed moves: a lead can be approved or rejected, a sale can still be rejected.
const MOVES: Readonly<Record<ConversionStatus, readonly ConversionStatus[]>> = {
  lead: ['sale', 'rejected'],
  sale: ['rejected'],
  rejected: [],
};

/** What a conversion does to the one recorded under the same (click, event, tid), if any. */
export function decideConversionMove(recorded: RecordedConversion | null, incoming: ConversionRequest): ConversionMove {
  if (!recorded) return { kind: 'new' };
  if (recorded.status === incoming.status) {
    if (recorded.payout === incoming.payout && recorded.currency === incoming.currency) return { kind: 'duplicate' };
    return {
      kind: 'ignored',
      reason:
        incoming.tid === ''
          ? `a repeat ${incoming.status} needs its own tid`
          : `${incoming.status} already recorded for tid ${incoming.tid}`,
    };
  }
  if (MOVES[recorded.status].includes(incoming.status)) return { kind: 'moved', from: recorded.status };
  return { kind: 'ignored', reason: `status cannot move from ${recorded.status} to ${incoming.status}` };
}
