import { describe, expect, it } from 'vitest';
import {
  decideConversionMove,
  mapStatus,
  readConversion,
  type ConversionRequest,
} from '../../src/domain/tracker/conversion.js';

const params = (pairs: Record<string, string>) => new Map(Object.entries(pairs));

describe('reading a conversion', () => {
  it('maps statuses through the request lists first, then the three words; none means sale', () => {
    expect(mapStatus(params({ status: '1', sale_status: '1,5', lead_status: '2' }))).toBe('sale');
    expect(mapStatus(params({ status: '2', sale_status: '1,5', lead_status: '2' }))).toBe('lead');
    expect(mapStatus(params({ status: '3', rejected_status: '3' }))).toBe('rejected');
    expect(mapStatus(params({ status: 'Lead' }))).toBe('lead');
    expect(mapStatus(params({}))).toBe('sale');
    expect(mapStatus(params({ status: 'approved' }))).toBeNull();
  });

  it('reads the aliases and normalises payout and currency', () => {
    expect(
      readConversion(
        params({ subid: 'k1', revenue: '10.50', txid: 'T-1', goal: 'deposit', currency: 'usd', status: 'sale' }),
      ),
    ).toEqual({ clickid: 'k1', status: 'sale', payout: '10.5', currency: 'USD', tid: 'T-1', event: 'deposit' });
    expect(readConversion(params({ cid: 'k2', payout: '007.000' }))).toMatchObject({
      payout: '7',
      tid: '',
      event: 'default',
    });
  });

  it('refuses what it cannot use, naming the parameter', () => {
    const refusal = (pairs: Record<string, string>) => {
      try {
        readConversion(params(pairs));
      } catch (error) {
        return error;
      }
      throw new Error('accepted');
    };
    expect(refusal({})).toMatchObject({ kind: 'invalid', code: 'missing_clickid', param: 'clickid' });
    expect(refusal({ clickid: 'a b' })).toMatchObject({ kind: 'invalid', code: 'invalid_clickid', param: 'clickid' });
    expect(refusal({ clickid: 'a', payout: 'ten' })).toMatchObject({ code: 'invalid_payout', param: 'payout' });
    expect(refusal({ clickid: 'a', sum: '1e3' })).toMatchObject({ code: 'invalid_payout', param: 'sum' });
    expect(refusal({ clickid: 'a', currency: 'EURO' })).toMatchObject({ code: 'invalid_currency', param: 'currency' });
    expect(refusal({ clickid: 'a', tid: 'x y' })).toMatchObject({ code: 'invalid_tid', param: 'tid' });
    expect(refusal({ clickid: 'a', status: 'won' })).toMatchObject({ kind: 'unprocessable', code: 'unknown_status' });
  });
});

describe('a conversion’s status moves', () => {
  const incoming = (
    status: ConversionRequest['status'],
    payout: string | null = '10',
    tid = '',
  ): ConversionRequest => ({
    clickid: 'k',
    status,
    payout,
    currency: null,
    tid,
    event: 'default',
  });
  const recorded = (status: ConversionRequest['status'], payout: string | null = '10') => ({
    status,
    payout,
    currency: null,
  });

  it('allows lead → sale, lead → rejected and sale → rejected; a repeat is a duplicate; the rest is ignored', () => {
    expect(decideConversionMove(null, incoming('lead'))).toEqual({ kind: 'new' });
    expect(decideConversionMove(recorded('lead'), incoming('sale'))).toEqual({ kind: 'moved', from: 'lead' });
    expect(decideConversionMove(recorded('lead'), incoming('rejected'))).toEqual({ kind: 'moved', from: 'lead' });
    expect(decideConversionMove(recorded('sale'), incoming('rejected'))).toEqual({ kind: 'moved', from: 'sale' });
    expect(decideConversionMove(recorded('sale'), incoming('sale'))).toEqual({ kind: 'duplicate' });
    expect(decideConversionMove(recorded('sale'), incoming('lead'))).toMatchObject({ kind: 'ignored' });
    expect(decideConversionMove(recorded('rejected'), incoming('sale'))).toMatchObject({ kind: 'ignored' });
    expect(decideConversionMove(recorded('sale', '10'), incoming('sale', '20'))).toEqual({
      kind: 'ignored',
      reason: 'a repeat sale needs its own tid',
    });
    expect(decideConversionMove(recorded('sale', '10'), incoming('sale', '20', 'T1'))).toEqual({
      kind: 'ignored',
      reason: 'sale already recorded for tid T1',
    });
  });
});
