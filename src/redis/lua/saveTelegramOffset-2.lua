--[[
  Stores a bot's next getUpdates offset while the poll lock is ours, never moving it back.

  Input:
    KEYS[1] the poll lock
    KEYS[2] the offset

    ARGV[1] owner (of the poll lock)
    ARGV[2] the next offset
    ARGV[3] ttl of the offset in ms

  Output:
    1 the lock is ours (the offset is stored, or was already at least as far)
    0 the lock is not ours: nothing stored
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local current = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
local offset = tonumber(ARGV[2])
if offset > current then redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3]) end
return 1
