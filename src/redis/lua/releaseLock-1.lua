--[[
  Deletes a lock (a key holding its owner's id) only when it is ours.
  Used by the dialog lease (drop) and by the Telegram poll lock.

  Input:
    KEYS[1] the lock

    ARGV[1] owner

  Output:
    1 deleted
    0 the lock is gone or held by another owner
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
