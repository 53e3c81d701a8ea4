-- wrk-submit.lua - wrk's request for the cross-check of anvil-bench's HTTP
-- submit rate (bench/wrk.sh): POST /v1/jobs with a JSON body, a job of a
-- type no worker serves with a 32-byte payload, as anvil-bench posts it.
-- wrk reports answers other than 2xx/3xx as "Non-2xx or 3xx responses";
-- anvild answers 201 Created.
wrk.method = "POST"
wrk.path = "/v1/jobs"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"type":"bench.wrk","payload":{"n":1,"pad":"xxxxxxxxxxxxxxxx"}}'
