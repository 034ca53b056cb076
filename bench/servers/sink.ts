// A local webhook receiver for the bench: answers 200 after DELAY_MS, and remembers when each
// path arrived (GET /_arrivals lists them) so that delivery latency can be measured.
import { createServer } from 'node:http';

const delayMs = Number(process.env.DELAY_MS ?? 0);
let arrivals: Array<[string, number]> = [];
const server = createServer((req, res) => {
  if (req.url === '/_arrivals') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(arrivals));
    arrivals = [];
    return;
  }
  // Wall-clock milliseconds with sub-millisecond precision, comparable across processes.
  arrivals.push([req.url ?? '', performance.timeOrigin + performance.now()]);
  req.resume();
  const done = () => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
  };
  if (delayMs > 0) setTimeout(done, delayMs);
  else done();
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT), '127.0.0.1');
