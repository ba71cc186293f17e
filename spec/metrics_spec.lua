-- spec/metrics_spec.lua - `lash metrics`, eng:metrics() and `lash worker
-- --metrics ADDR` (issue 14.4): the text is parsed by prometheus_client's
-- own parser (spec/promparse.py) and its values checked against
-- eng:stats() and the rows that were made; the worker serves them on its
-- loop while it drains, a real OS process.
local h = require "spec.helpers"
local cjson = require "cjson"

local BIN = os.getenv("LASH_BIN") or (h.root .. "/build/bindings/lash")

-- Parses Prometheus text (or GETs url): the decoded JSON of promparse.py.
local function parse(text, url)
  local dir = h.tmpdir()
  local cmd
  if url then
    cmd = string.format("/usr/bin/python3 %s %s >%s/out", h.q(h.root .. "/spec/promparse.py"),
      h.q(url), dir)
  else
    h.write_file(dir .. "/in", text)
    cmd = string.format("/usr/bin/python3 %s <%s/in >%s/out",
      h.q(h.root .. "/spec/promparse.py"), dir, dir)
  end
  os.execute(cmd)
  local out = h.read_file(dir .. "/out") or ""
  local ok, v = pcall(cjson.decode, out)
  assert(ok, "promparse printed no JSON: " .. out)
  return v
end

-- The value of the sample named name whose labels include want.
local function value(doc, name, want)
  for _, s in ipairs(doc.samples) do
    if s.name == name then
      local match = true
      for k, v in pairs(want or {}) do
        if s.labels[k] ~= v then match = false end
      end
      if match then return s.value end
    end
  end
end

-- A store with kind "ok" (3 completed), "bad" (1 failed) and "later" (2
-- pending: nobody defines it here). Returns the path.
local function seeded()
  local path = h.store_path()
  local eng = h.open(path)
  eng:define("ok", function() return 1 end)
  eng:define("bad", function() error("no luck") end)
  for i = 1, 3 do assert(eng:start("ok", i, { id = "ok-" .. i })) end
  assert(eng:start("bad", nil, { id = "bad-1", max_attempts = 1 }))
  assert(eng:start("later", nil, { id = "later-1" }))
  assert(eng:start("later", nil, { id = "later-2" }))
  assert(eng:run { until_idle = true })
  assert.equal("failed", eng:get("bad-1").status)
  eng:close()
  return path
end

local function bg(args, log)
  local parts = {}
  for i, a in ipairs(args) do parts[i] = h.q(a) end
  local cmd = string.format("%s %s >%s 2>&1 </dev/null & echo $!", h.q(BIN),
    table.concat(parts, " "), h.q(log))
  local p = assert(io.popen("sh -c " .. h.q(cmd), "r"))
  local pid = tonumber(p:read("l"))
  p:close()
  return pid
end

describe("lash metrics", function()
  after_each(h.cleanup)

  it("prints text a Prometheus parser reads, with the rows per kind and status", function()
    local path = seeded()
    local code, out, err = h.cli(path, "metrics")
    assert.equal(0, code, err)
    local doc = parse(out)
    assert.is_nil(doc.error)
    assert.equal("gauge", doc.families.lash_processes)
    assert.equal("histogram", doc.families.lash_process_duration_seconds)
    assert.equal("counter", doc.families.lash_engine_commits)
    assert.equal(3, value(doc, "lash_processes", { kind = "ok", status = "completed" }))
    assert.equal(0, value(doc, "lash_processes", { kind = "ok", status = "failed" }))
    assert.equal(1, value(doc, "lash_processes", { kind = "bad", status = "failed" }))
    assert.equal(2, value(doc, "lash_processes", { kind = "later", status = "pending" }))
    assert.equal(2, value(doc, "lash_backlog"))
    local age = value(doc, "lash_backlog_oldest_age_seconds")
    assert.is_true(age >= 0 and age < 600, "oldest age " .. tostring(age))
    assert.is_truthy(value(doc, "lash_kind_backlog_oldest_age_seconds", { kind = "later" }))
    assert.is_nil(value(doc, "lash_kind_backlog_oldest_age_seconds", { kind = "ok" }))
    -- the histogram: cumulative buckets, +Inf = count = the ended rows
    assert.equal(3, value(doc, "lash_process_duration_seconds_count", { kind = "ok" }))
    assert.equal(3, value(doc, "lash_process_duration_seconds_bucket",
      { kind = "ok", le = "+Inf" }))
    assert.equal(1, value(doc, "lash_attempt_duration_seconds_count", { kind = "bad" }))
    local last = -1
    for _, s in ipairs(doc.samples) do
      if s.name == "lash_process_duration_seconds_bucket" and s.labels.kind == "ok" then
        assert.is_true(s.value >= last)
        last = s.value
      end
    end
    assert.equal(0, value(doc, "lash_process_duration_seconds_count", { kind = "later" }))
    -- against the store's own counters
    local eng = h.open(path)
    local st = eng:stats()
    for _, status in ipairs { "pending", "running", "waiting", "completed", "failed" } do
      assert.equal(st[status], value(doc, "lash_store_processes", { status = status }), status)
    end
    assert.equal(st.change_seq, value(doc, "lash_changes_total"))
    assert.equal(st.tombstones, value(doc, "lash_tombstones"))
    assert.equal(1, value(doc, "lash_info", { version = require("lash").version }))
  end)

  it("eng:metrics() is the same text, with this engine's own counters", function()
    local path = seeded()
    local eng = h.open(path)
    eng:define("later", function() return "done" end)
    assert(eng:run { until_idle = true })
    local text = assert(eng:metrics())
    local doc = parse(text)
    assert.is_nil(doc.error)
    assert.equal(2, value(doc, "lash_processes", { kind = "later", status = "completed" }))
    assert.equal(0, value(doc, "lash_backlog"))
    assert.equal(0, value(doc, "lash_backlog_oldest_age_seconds"))
    local st = eng:stats()
    assert.is_true(st.commits > 0)
    assert.equal(st.commits, value(doc, "lash_engine_commits_total"))
    assert.equal(st.completed, value(doc, "lash_store_processes", { status = "completed" }))
  end)

  it("a worker serves GET /metrics on its loop while it drains", function()
    local path = h.store_path()
    local eng = h.open(path)
    for i = 1, 30 do assert(eng:start("tick", i, { id = string.format("t-%02d", i) })) end
    eng:close()
    local dir = h.tmpdir()
    h.write_file(dir .. "/kinds.lua",
      "return { tick = function(ctx, n) ctx:sleep(5 * (n % 3)); return n end }")
    local log = dir .. "/log"
    local pid = bg({ "--db", path, "worker", "--load", dir .. "/kinds.lua", "--metrics",
      "127.0.0.1:0" }, log)
    local addr = h.poll(function()
      return (h.read_file(log) or ""):match("metrics on http://([%d%.:]+)/metrics")
    end, 30000)
    assert.is_truthy(addr, h.read_file(log))
    local doc = h.poll(function()
      local d = parse(nil, "http://" .. addr .. "/metrics")
      if value(d, "lash_processes", { kind = "tick", status = "completed" }) == 30 then return d end
    end, 60000, 100)
    assert.is_truthy(doc, "the worker's metrics never showed 30 completed rows")
    assert.equal(200, doc.status)
    assert.matches("^text/plain; version=0.0.4", doc.content_type)
    assert.is_true(value(doc, "lash_engine_commits_total") > 0)
    -- an owner lock on LMDB; PostgreSQL's comes with its advisory locks
    if not h.pg then assert.equal(1, value(doc, "lash_engine_owner_held")) end
    assert.equal(30, value(doc, "lash_process_duration_seconds_count", { kind = "tick" }))
    local other = parse(nil, "http://" .. addr .. "/other")
    assert.equal(404, other.status)
    h.kill(pid, "TERM")
    assert.is_true(h.wait_exit(pid, 30000))
    assert.matches("stopped", h.read_file(log))
  end)

  it("refuses a malformed --metrics address, naming it", function()
    local path = h.store_path()
    local dir = h.tmpdir()
    h.write_file(dir .. "/kinds.lua", "return { k = function() end }")
    local code, _, err = h.cli(path, "worker", "--load", dir .. "/kinds.lua", "--metrics",
      "nowhere")
    assert.equal(2, code)
    assert.matches('%-%-metrics "nowhere"', err)
    assert.matches("HOST:PORT", err)
    if not h.pg then assert.is_nil(os.rename(path, path), "no store was made") end
    -- a host name the server cannot use: its own message, naming it
    code, _, err = h.cli(path, "worker", "--load", dir .. "/kinds.lua", "--metrics",
      "example.org:9464")
    assert.equal(1, code)
    assert.matches('address "example.org:9464"', err)
  end)
end)
