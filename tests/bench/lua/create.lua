-- POST a new lead with every field set (the phone is normalised by the app).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

wrk.method = "POST"
wrk.path = "/api/v1/leads"
wrk.headers["Authorization"] = bearer["Authorization"]
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"name": "Grace Hopper", "phone": "+1 415 555 0100", "email": "grace@example.com", '
   .. '"status": "new", "source": "website", "notes": "Asked for a demo next week."}'
