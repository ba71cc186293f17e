-- spec/reconnect_spec.lua - a worker whose PostgreSQL connection is lost
-- reconnects with backoff and keeps running (issue 12, item 1).
--
-- On PostgreSQL only: a spec of its own cluster (scripts/pg start in a
-- temp directory, so that stopping the server harms no other spec), one
-- `lash worker` process draining rows that this spec starts as it goes.
-- (a) The worker's server sessions are ended with pg_terminate_backend
-- (found by the application_name its URI names) several times while it
-- drains; (b) the server is stopped for three lease TTLs with bodies in
-- flight holding leases, and started again on the same port. The worker
-- must still be alive, must not have spun the CPU while the server was
-- away, must have dropped the bodies whose leases lapsed meanwhile, and
-- must finish every row; each row is completed exactly once in its event
-- log (no process.started after its process.completed), its journaled
-- steps are all there, each once (a write lost with the connection was
-- written again, in order), and `lash check` is clean. On LMDB there is
-- no connection to lose (an EIO stays fatal there): the spec says so and
-- is pending.
local h = require "spec.helpers"

local TTL = 1500
local APP = "lash_reconnect_worker"

local STEPS = 3
local KINDS = "local STEPS = " .. STEPS .. "\n" .. [[
return {
  job = function(ctx, input)
    for i = 1, STEPS do
      ctx:step("s" .. i, function() return i end)
      ctx:sleep(input.ms or 20)
    end
    return { n = input.n }
  end,
}
]]

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end

-- Runs one SQL statement on the cluster (psql, as its own session): its
-- output, trimmed. Not under the sanitizer preload of the ASan specs (an
-- inherited LD_PRELOAD hangs psql).
local function sql(uri, q)
  local ok, out = sh("env -u LD_PRELOAD -u ASAN_OPTIONS psql -X -Atq " .. h.q(uri) .. " -c "
    .. h.q(q))
  assert(ok, "psql: " .. out)
  return (out:gsub("%s+$", ""))
end

-- CPU seconds (user + system) the process has used.
local function cpu_s(pid)
  local st = h.read_file("/proc/" .. pid .. "/stat") or ""
  local rest = st:match("%) (.*)$")
  if not rest then return 0 end
  local f = {}
  for x in rest:gmatch("%S+") do f[#f + 1] = x end
  local _, tck = sh("getconf CLK_TCK")
  return (tonumber(f[12]) + tonumber(f[13])) / (tonumber(tck) or 100)
end

-- Retries fn (a write or read of this spec's own engine, whose connection
-- the server restart also ended) until it returns a value.
local function retrying(fn)
  return h.poll(function()
    local ok, v = pcall(fn)
    if ok and v then return v end
  end, 30000, 100)
end

describe("a worker on PostgreSQL that loses its connection", function()
  local cluster, worker
  after_each(function()
    if worker and h.alive(worker.pid) then worker.kill("KILL") end
    worker = nil
    -- the cluster first: cleanup removes the directory it runs in
    if cluster then os.execute(h.root .. "/scripts/pg stop " .. h.q(cluster)) end
    cluster = nil
    h.cleanup()
  end)

  it("reconnects with backoff, keeps running, and completes every row exactly once", function()
    if not h.pg then
      pending("PostgreSQL only (LASH_TEST_TARGET): an LMDB store has no connection to lose, " ..
        "and an EIO there stays fatal")
      return
    end
    local pgdir = h.tmpdir() .. "/pg"
    local ok, out = sh(h.root .. "/scripts/pg start " .. h.q(pgdir))
    assert(ok, "scripts/pg start: " .. out)
    cluster = pgdir
    local uri = out:match("(postgresql://%S+)")
    local db = uri .. "?schema=reconnect"
    local wdb = db .. "&application_name=" .. APP

    local eng = h.open(db)
    local n = 0
    local function produce(k, ms)
      local ids = {}
      retrying(function()
        eng:batch(function()
          for i = 1, k do
            ids[i] = "row-" .. (n + i)
            assert(eng:start("job", { n = n + i, ms = ms }, { id = ids[i] }))
          end
        end)
        return true
      end)
      n = n + k
      return ids
    end
    produce(50)
    local w = h.cli_worker(wdb, { "--load", h.kinds_file(KINDS), "--concurrency", "8",
      "--lease-ttl", TTL .. "ms" }, 20000)
    worker = w
    assert(w.line("INFO worker:", 15000), "the worker did not start: " .. w.text())

    -- (a) its sessions ended under it, while it drains
    local ended = 0
    for _ = 1, 8 do
      produce(40)
      h.sleep_ms(150)
      ended = ended + tonumber(sql(uri, "SELECT count(pg_terminate_backend(pid)) FROM " ..
        "pg_stat_activity WHERE application_name = '" .. APP .. "'"))
      h.sleep_ms(150)
    end
    assert.is_true(h.alive(w.pid), "the worker died when its sessions were ended:\n" .. w.text())
    assert.is_true(ended >= 3, "sessions of the worker ended: " .. ended)

    -- (b) the server away for three lease TTLs, bodies in flight
    local long = produce(6, 2000)
    local seen
    assert(h.poll(function()
      seen = {}
      for _, id in ipairs(long) do
        local r = eng:get(id)
        seen[#seen + 1] = r and r.status or "?"
        if not r or (r.status ~= "running" and r.status ~= "waiting") then return false end
      end
      return true
    end, 20000), "the long bodies did not start: " .. table.concat(seen, " ") .. "\n" .. w.text())
    local cpu0, t0 = cpu_s(w.pid), h.mono_ms()
    assert(sh(h.root .. "/scripts/pg halt " .. h.q(pgdir)))
    h.sleep_ms(3 * TTL)
    local cpu = cpu_s(w.pid) - cpu0
    local away = (h.mono_ms() - t0) / 1000
    assert(sh(h.root .. "/scripts/pg resume " .. h.q(pgdir)))
    assert.is_true(h.alive(w.pid), "the worker died while the server was away:\n" .. w.text())
    -- generous: a loop spinning while the server is away burns ~100%
    assert.is_true(cpu < away / 2, string.format("the worker used %.2f s of CPU in %.2f s " ..
      "without a server", cpu, away))
    produce(40)

    local total = n
    assert(h.poll(function()
      local s = retrying(function() return eng:stats() end)
      return (s.completed or 0) >= total
    end, 90000, 200), "the worker did not finish the rows:\n" .. w.text())
    assert.is_true(h.alive(w.pid), "the worker is still running")
    local log = w.text()
    -- each backoff step said once, and the way back
    assert.matches("storage: .- writing again in 10 ms %(attempt 1", log)
    assert.matches("storage: writing again after %d+ failed attempts", log)
    -- the leases that lapsed while the server was away: their bodies dropped
    assert.matches("their bodies are dropped", log)
    local _, lines = log:gsub("writing again in 1000 ms", "")
    assert.is_true(lines <= 3, "one line per backoff step, not one per attempt:\n" .. log)
    w.kill("TERM")
    assert.are.equal(0, w.wait(30000))

    for i = 1, total do
      local id = "row-" .. i
      local evs = retrying(function() return eng:events(id, 0) end)
      local done_at, steps = nil, {}
      for k, ev in ipairs(evs) do
        if ev.type == "process.step" then
          local name = ev.payload and ev.payload.name
          assert.is_nil(steps[name], id .. ": step " .. tostring(name) .. " journaled twice")
          steps[name] = true
        elseif ev.type == "process.completed" then
          assert.is_nil(done_at, id .. " completed twice")
          done_at = k
        elseif ev.type == "process.started" then
          assert.is_nil(done_at, id .. " started again after its completion")
        end
      end
      assert.is_not_nil(done_at, id .. " never completed")
      for k = 1, STEPS do
        assert.is_true(steps["s" .. k], id .. ": step s" .. k .. " is not in its journal")
      end
    end
    local code, cout, cerr = h.cli(db, "check")
    assert.are.equal(0, code, "lash check: " .. cout .. cerr)
  end)
end)
