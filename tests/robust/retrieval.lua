-- retrieval.lua - wrk script: a mixed keyword retrieval workload.
-- Each request is a POST /api/v1/retrievals with a query of one to four
-- words drawn from the corpus vocabulary, half of them over one collection,
-- some with a metadata filter, top_k 5/10/20. ENGRAM_KEY and ENGRAM_COLL
-- come from the environment. done() prints one JSON line with the
-- latency percentiles and error counts (load.py reads it).
local key = os.getenv("ENGRAM_KEY")
local coll = os.getenv("ENGRAM_COLL")
local vocab = {"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
               "india", "juliet", "kilo", "lima", "river", "mountain", "lantern", "copper",
               "meadow", "harbor", "signal", "orchard", "protein", "cell", "gene", "dose"}
local topks = {5, 10, 20}

request = function()
  local n = math.random(1, 4)
  local words = {}
  for i = 1, n do words[i] = vocab[math.random(#vocab)] end
  local body = '{"query":"' .. table.concat(words, " ") .. '","mode":"keyword","top_k":' ..
               topks[math.random(#topks)]
  local r = math.random()
  if r < 0.5 then body = body .. ',"collection_id":"' .. coll .. '"' end
  if r > 0.8 then body = body .. ',"metadata_filter":{"group":"g' .. math.random(0, 3) .. '"}' end
  body = body .. "}"
  return wrk.format("POST", "/api/v1/retrievals",
                    {["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json"},
                    body)
end

done = function(summary, latency, requests)
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.status, summary.errors.timeout))
end
