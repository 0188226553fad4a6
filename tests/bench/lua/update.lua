-- PATCH a random one of the member's seeded leads: a random status and a note.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local statuses = { "new", "contacted", "qualified", "won", "lost" }

function request()
   local body = '{"status": "' .. statuses[math.random(#statuses)]
      .. '", "notes": "Called back on ' .. math.random(1, 28) .. ' May."}'
   return wrk.format("PATCH", "/api/v1/leads/" .. math.random(first_id, last_id), json_headers, body)
end
