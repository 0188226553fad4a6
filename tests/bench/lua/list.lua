-- GET the member's first list page, 50 leads (newest first, the default sort).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

wrk.method = "GET"
wrk.path = "/api/v1/leads?limit=50"
wrk.headers["Authorization"] = bearer["Authorization"]
