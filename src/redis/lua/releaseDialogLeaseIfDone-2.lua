--[[
  Releases a dialog's lease, unless a note says more came in meanwhile: then the note goes and
  the holder keeps the lease to look again.

  Input:
    KEYS[1] the lease
    KEYS[2] the dirty flag (the note)

    ARGV[1] owner (the id the lease was taken with)

  Output:
    1  released
    0  more came in: the note is gone, the lease is kept, look again
    -1 the lease was not ours
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if redis.call('DEL', KEYS[2]) == 1 then return 0 end
redis.call('DEL', KEYS[1])
return 1
