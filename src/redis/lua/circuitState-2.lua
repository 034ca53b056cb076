--[[
  Tells whether to attempt a delivery to a host, judged by Redis server time so that every
  process agrees. Once an open circuit's pause is over, the one caller that sets the probe lock
  gets 'half_open': it is the probe and must report the outcome.

  Input:
    KEYS[1] the host's state hash {retryAt, pauseMs}, present only while open
    KEYS[2] the host's probe lock

    ARGV[1] probe token (a random id of this caller)
    ARGV[2] probe lease in ms (how long a won probe keeps others out)

  Output:
    {'closed'}            attempt
    {'half_open'}         attempt: this caller is the probe
    {'open', retryAtMs}   do not attempt before retryAtMs (Redis server time, epoch ms)
]]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

local retryAt = tonumber(redis.call('HGET', KEYS[1], 'retryAt'))
if not retryAt then return {'closed'} end
if now < retryAt then return {'open', retryAt} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {'half_open'} end
local ttl = redis.call('PTTL', KEYS[2])
if ttl < 0 then ttl = 0 end
return {'open', now + ttl}
