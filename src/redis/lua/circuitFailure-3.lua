--[[
  Records a failure that counts against a host, judged by Redis server time. While open: ignored.
  Once the pause is over (the probe failed): re-opens with the pause doubled, up to the cap.
  While closed: counts the failure within the window, and opens the circuit once there are
  enough.

  Input:
    KEYS[1] the host's state hash {retryAt, pauseMs}, present only while open
    KEYS[2] the host's failures (sorted set, member unique, score time), present while closed
    KEYS[3] the host's probe lock

    ARGV[1] member (a random id of this failure)
    ARGV[2] failure window in ms (older failures do not count)
    ARGV[3] failures within the window that open the circuit
    ARGV[4] first pause in ms once open
    ARGV[5] cap of the doubling pause in ms
    ARGV[6] keep in ms (how long an open state outlives its pause)

  Output:
    {'closed'}            the failure was counted; the circuit stays closed
    {'open', retryAtMs}   the circuit is open until retryAtMs (Redis server time, epoch ms)
]]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

local keep = tonumber(ARGV[6])
local retryAt = tonumber(redis.call('HGET', KEYS[1], 'retryAt'))
if retryAt then
  if now < retryAt then return {'open', retryAt} end
  local pause = math.min((tonumber(redis.call('HGET', KEYS[1], 'pauseMs')) or tonumber(ARGV[4])) * 2, tonumber(ARGV[5]))
  redis.call('HSET', KEYS[1], 'retryAt', now + pause, 'pauseMs', pause)
  redis.call('PEXPIRE', KEYS[1], pause + keep)
  redis.call('DEL', KEYS[3])
  return {'open', now + pause}
end
local window = tonumber(ARGV[2])
redis.call('ZADD', KEYS[2], now, now .. ':' .. ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. (now - window))
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then
  local pause = tonumber(ARGV[4])
  redis.call('DEL', KEYS[2], KEYS[3])
  redis.call('HSET', KEYS[1], 'retryAt', now + pause, 'pauseMs', pause)
  redis.call('PEXPIRE', KEYS[1], pause + keep)
  return {'open', now + pause}
end
redis.call('PEXPIRE', KEYS[2], window)
return {'closed'}
