--[[
  Takes a dialog's lease, or, when another process holds it, leaves the holder a note that there
  is more to do (so no wake-up is lost while the holder finishes).

  Input:
    KEYS[1] the lease
    KEYS[2] the dirty flag (the note)

    ARGV[1] owner (a random id of this hold)
    ARGV[2] ttl in ms (of the lease, and of the note)

  Output:
    1 the lease was taken
    0 another holds it (the note is set)
]]
if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return 1 end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
return 0
