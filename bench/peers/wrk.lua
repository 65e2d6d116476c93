-- wrk script of the peer benchmark (bench/peers/loadgen.py runs it).
--
-- Arguments after "--": body prefix, body suffix, the text every good answer
-- contains, then request headers as "Name: value". Every request's body is
-- prefix .. "<thread>-<n>" .. suffix; loadgen.py ends the prefix with a new run id for every run,
-- so prompts never repeat, not even across runs, and every cache
-- lookup misses. An answer that is not a 200 or lacks the text counts as bad.
-- done() prints one line "PEERS-JSON {...}" with counts and latency percentiles.

local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  prefix = args[1]
  suffix = args[2]
  marker = args[3]
  for i = 4, #args do
    local name, value = args[i]:match("^([^:]+):%s*(.*)$")
    wrk.headers[name] = value
  end
  wrk.method = "POST"
  sent = 0
  bad = 0
  bad_sample = ""
end

function request()
  sent = sent + 1
  return wrk.format(nil, nil, nil, prefix .. tid .. "-" .. sent .. suffix)
end

function response(status, headers, body)
  if status ~= 200 or not body:find(marker, 1, true) then
    bad = bad + 1
    if bad_sample == "" then
      bad_sample = status .. " " .. body:sub(1, 200)
    end
  end
end

local function clean(text)
  return (text:gsub("[^%w%s%.:,_%-/%[%]{}=]", "?"):gsub("%s+", " "))
end

function done(summary, latency, requests)
  local bad_total, sent_total, sample = 0, 0, ""
  for _, thread in ipairs(threads) do
    bad_total = bad_total + thread:get("bad")
    sent_total = sent_total + thread:get("sent")
    local one = thread:get("bad_sample")
    if sample == "" and one ~= nil then
      sample = one
    end
  end
  local errors = summary.errors
  io.write(string.format(
    '\nPEERS-JSON {"requests": %d, "sent": %d, "duration_us": %d, "connect_errors": %d, "read_errors": %d, ' ..
    '"write_errors": %d, "status_errors": %d, "timeouts": %d, "bad_answers": %d, "p50_us": %d, ' ..
    '"p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f, "bad_sample": "%s"}\n',
    summary.requests, sent_total, summary.duration, errors.connect, errors.read, errors.write, errors.status,
    errors.timeout, bad_total, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, clean(sample)))
end
