-- wrk script: POST the bodies of $BENCH_BODIES (one per line) in turn and count bad answers.
-- A bad answer is a status other than $BENCH_STATUS, or, with $BENCH_BODY_MUST set, a body
-- without that text (a batch answered 200 with rejected events). done() prints one JSON line.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  bodies = {}
  for line in io.lines(os.getenv("BENCH_BODIES")) do
    bodies[#bodies + 1] = line
  end
  expected = tonumber(os.getenv("BENCH_STATUS") or "202")
  must = os.getenv("BENCH_BODY_MUST")
  counter = math.random(#bodies)
  bad = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[counter])
end

function response(status, headers, body)
  if status ~= expected or (must and not string.find(body, must, 1, true)) then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local total_bad = 0
  for _, thread in ipairs(threads) do
    total_bad = total_bad + thread:get("bad")
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "bad": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "timeout": %d, "status": %d, "p50_ms": %.3f, "p99_ms": %.3f}\n',
    summary.requests, summary.duration, total_bad, e.connect, e.read, e.write, e.timeout,
    e.status, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
