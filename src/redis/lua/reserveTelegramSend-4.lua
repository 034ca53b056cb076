--[[
  Books the next slot for a Telegram send of one bot to one chat, on Redis' clock so that every
  process agrees (times in microseconds), and tells how long to wait before using it.

  The chat: GCRA. Its key holds the theoretical arrival time (TAT); a send may go at
  max(now, TAT - tolerance), and the TAT then moves to max(TAT, send time) + interval.

  The bot: a calendar of buckets (a bucket is `bucket length` long and holds `cap` sends, one key
  per bucket). A send takes the first bucket with room at or after the chat's time. Unlike a
  single GCRA over both keys, a send that waits a second for its chat does not hold up the bot's
  other chats. A frontier key remembers the first bucket from now on that may have room, so the
  common case (a chat that may send now) reads one bucket, not every full one.

  The bot's hold: after Telegram answered 429 with retry_after, nothing of the bot is sent before
  the hold ends (the whole bot slows down, as Telegram asks).

  Two lanes share these limits. `live` (the dialogs' own messages) books ahead as described.
  `spare` (broadcasts) only takes a slot that is free now: the bucket of this moment with room, a
  chat that may send now, no hold. It books nothing ahead, so live sends always find the next
  bucket with room before a broadcast does: live traffic goes first inside the bot's limit.

  Input:
    KEYS[1] the chat's TAT
    KEYS[2] the base of the bot's bucket keys (a bucket is KEYS[2] .. ':' .. its number)
    KEYS[3] the bot's frontier
    KEYS[4] the bot's hold (µs until which nothing is sent)

    ARGV[1] chat interval in µs (0: no chat limit)
    ARGV[2] chat tolerance in µs (the burst)
    ARGV[3] bot bucket length in µs (0: no bot limit)
    ARGV[4] bot cap (sends per bucket)
    ARGV[5] 'live' or 'spare'

  Output:
    live: the ms to wait before sending (0: send now)
    spare: {0, 0} when a slot was booked for now; else nothing is booked and {1, ms} (the bot is busy
    or held) or {2, ms} (the chat is busy) tells after how many ms to ask again
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local spare = ARGV[5] == 'spare'
local function later(us, chatBusy)
  local code = 1
  if chatBusy then code = 2 end
  return { code, math.max(1, math.ceil(us / 1000)) }
end
local at = now
local hold = tonumber(redis.call('GET', KEYS[4]) or '0') or 0
if hold > at then
  if spare then return later(hold - now) end
  at = hold
end
local chatInterval = tonumber(ARGV[1])
local chatTat = 0
if chatInterval > 0 then
  chatTat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
  if chatTat < now then chatTat = now end
  local earliest = chatTat - tonumber(ARGV[2])
  if earliest > at then
    if spare then return later(earliest - now, true) end
    at = earliest
  end
end
local bucketUs = tonumber(ARGV[3])
if bucketUs > 0 then
  local cap = tonumber(ARGV[4])
  local nowBucket = math.floor(now / bucketUs)
  local frontier = tonumber(redis.call('GET', KEYS[3]) or '0') or 0
  if frontier < nowBucket then frontier = nowBucket end
  local b = math.floor(at / bucketUs)
  local fromFrontier = b <= frontier
  if fromFrontier then b = frontier end
  if spare and b > nowBucket then return later(b * bucketUs - now) end
  local count = 0
  local guard = 0
  while true do
    count = tonumber(redis.call('GET', KEYS[2] .. ':' .. string.format('%d', b)) or '0') or 0
    if count < cap or guard >= 100000 then break end
    if spare then return later((b + 1) * bucketUs - now) end
    b = b + 1
    guard = guard + 1
  end
  local key = KEYS[2] .. ':' .. string.format('%d', b)
  count = redis.call('INCR', key)
  local bucketEndMs = math.ceil(((b + 1) * bucketUs - now) / 1000)
  redis.call('PEXPIRE', key, bucketEndMs + 1000)
  if fromFrontier then
    local nextFrontier = b
    if count >= cap then nextFrontier = b + 1 end
    redis.call('SET', KEYS[3], string.format('%d', nextFrontier), 'PX', bucketEndMs + 2000)
  end
  local start = b * bucketUs
  if start > at then at = start end
end
if chatInterval > 0 then
  if chatTat < at then chatTat = at end
  local nextTat = chatTat + chatInterval
  redis.call('SET', KEYS[1], string.format('%d', nextTat), 'PX', math.ceil((nextTat - now) / 1000) + 1000)
end
if spare then return { 0, 0 } end
return math.ceil((at - now) / 1000)
