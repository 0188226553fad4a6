-- GET one lead, a random id among the member's seeded leads.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

function request()
   return wrk.format("GET", "/api/v1/leads/" .. math.random(first_id, last_id), bearer)
end
