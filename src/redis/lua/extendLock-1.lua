--[[
  Extends a lock (a key holding its owner's id) while it is still ours.
  Used by the dialog lease and by the Telegram poll lock.

  Input:
    KEYS[1] the lock

    ARGV[1] owner
    ARGV[2] new ttl in ms

  Output:
    1 extended
    0 the lock is gone or held by another owner
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
