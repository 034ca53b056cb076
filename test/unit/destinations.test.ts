import { describe, expect, it } from 'vitest';
import { checkTemplate } from '../../src/templates/index.js';
import {
  destinationRequests,
  destinationTemplate,
  type Destination,
  type DestinationHappening,
} from '../../src/domain/tracker/destinations.js';

const dialog = { chatId: 7, fields: { plan: 'gold' }, tracker: { clickid: 'k-1' } };
const sale: DestinationHappening = {
  kind: 'conversion',
  clickid: 'k-1',
  campaignId: 'Cmp1',
  campaign: 'spring sale',
  click: { ip: '203.0.113.5', fbc: 'fb.1.5.AbC' },
  conversion: {
    status: 'sale',
    payout: '30',
    currency: 'EUR',
    event: 'deposit',
    tid: '',
    eventKey: 'c1-sale',
    eventTime: 1700000000,
  },
};
const destination = (over: Partial<Destination>): Destination => ({
  id: 'd1',
  on: ['conversion'],
  campaigns: null,
  statuses: null,
  method: 'GET',
  url: 'https://t.example/p?subid={clickid}&status={status}&payout={payout}&c={campaign}',
  headers: {},
  body: null,
  ...over,
});

describe('destinations', () => {
  it('render their URL (encoded), headers and JSON body against the happening and the dialog', () => {
    const [request] = destinationRequests(
      [
        destination({
          method: 'POST',
          headers: { 'x-plan': '{fields.plan}' },
          body: '{"event_id":"{eventKey}","event_time":{eventTime},"value":{payout},"fbc":"{click.fbc}"}',
        }),
      ],
      sale,
      dialog,
    );
    expect(request).toEqual({
      destinationId: 'd1',
      method: 'POST',
      url: 'https://t.example/p?subid=k-1&status=sale&payout=30&c=spring%20sale',
      headers: { 'x-plan': 'gold' },
      body: '{"event_id":"c1-sale","event_time":1700000000,"value":30,"fbc":"fb.1.5.AbC"}',
    });
  });

  it('hear only their events, campaigns and statuses', () => {
    const heard = (over: Partial<Destination>, happening = sale) =>
      destinationRequests([destination(over)], happening, dialog).length;
    expect(heard({})).toBe(1);
    expect(heard({ on: ['click.claimed'] })).toBe(0);
    expect(heard({ campaigns: ['Other'] })).toBe(0);
    expect(heard({ campaigns: ['Cmp1'] })).toBe(1);
    expect(heard({ statuses: ['lead'] })).toBe(0);
    const claimed: DestinationHappening = { ...sale, kind: 'click.claimed', conversion: undefined };
    expect(heard({ on: ['click.claimed'], statuses: ['sale'] }, claimed)).toBe(1);
  });

  it('a placeholder right before a "}" still makes a valid template', () => {
    expect(checkTemplate(destinationTemplate('{"value":{payout}}'), 'json')).toBeNull();
    expect(destinationTemplate('{x}{clickid}')).toBe('{x}{{destination.clickid}}');
  });
});
