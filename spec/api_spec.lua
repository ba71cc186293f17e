-- spec/api_spec.lua - every call of the user-facing Lua API (DESIGN §5,
-- issue 3): success, documented failures, misuse raising with the argument
-- named, unknown ids, conflicts, payloads that write nothing, closed engines.
local lash = require "lash"
local h = require "spec.helpers"

local function await(eng, id, ms)
  return eng:await(id, { timeout_ms = ms or 5000 })
end

local STATUSES = { "pending", "running", "waiting", "completed", "failed",
  "cancelled", "abandoned" }

describe("lash API", function()
  after_each(h.cleanup)

  describe("lash.open / close", function()
    it("creates a missing store directory 0700 and returns an engine", function()
      if h.lmdb_only(pending) then return end
      local dir = h.store_path()
      local eng = h.open(dir)
      assert.is_not_nil(eng)
      local p = io.popen("stat -c %a " .. h.q(dir))
      local mode = p:read("l")
      p:close()
      assert.are.equal("700", mode)
      -- every file the store created is 0600
      p = io.popen("find " .. h.q(dir) .. " -type f -exec stat -c %a {} +")
      local modes = p:read("a")
      p:close()
      assert.is_truthy(#modes > 0, "store directory holds no files")
      for m in modes:gmatch("%d+") do assert.are.equal("600", m) end
    end)

    it("accepts every documented option", function()
      local eng = h.open(nil, {
        durability = "nometa", owner = "worker-a", concurrency = 8,
        lease_ttl_ms = 3000, renew_ms = 1000, max_payload = 4096,
      })
      local id = assert(eng:start("k", { a = 1 }))
      assert.are.equal("pending", eng:get(id).status)
    end)

    it("raises on a non-string dir, naming it", function()
      h.raises_naming(function() lash.open(42) end, "dir")
      h.raises_naming(function() lash.open({}) end, "dir")
    end)

    it("raises on wrongly typed options, naming them", function()
      local dir = h.store_path()
      h.raises_naming(function() lash.open(dir, { concurrency = "many" }) end, "concurrency")
      h.raises_naming(function() lash.open(dir, { lease_ttl_ms = "x" }) end, "lease_ttl_ms")
      h.raises_naming(function() lash.open(dir, { renew_ms = {} }) end, "renew_ms")
      h.raises_naming(function() lash.open(dir, { owner = {} }) end, "owner")
      h.raises_naming(function() lash.open(dir, { max_payload = "big" }) end, "max_payload")
      h.raises_naming(function() lash.open(dir, { durability = 42 }) end, "durability")
    end)

    it("refuses an unknown durability, naming it", function()
      h.refuses(function() return lash.open(h.store_path(), { durability = "maybe" }) end,
        "durability")
    end)

    it("returns nil, msg, code for a store under a missing parent", function()
      local dir = h.tmpdir() .. "/no/such/parent/store"
      local eng, msg, code = lash.open(dir, { durability = "none" })
      assert.is_nil(eng)
      assert.is_string(msg)
      assert.is_truthy(msg:find(dir, 1, true), "message should name the directory: " .. msg)
      assert.is_string(code)
    end)

    it("returns nil, msg, code when dir is a regular file", function()
      local path = h.tmpdir() .. "/plain-file"
      h.write_file(path, "not a store")
      local eng, msg, code = lash.open(path, { durability = "none" })
      assert.is_nil(eng)
      assert.is_truthy(msg:find(path, 1, true), "message should name the path: " .. tostring(msg))
      assert.is_string(code)
    end)

    it("a full map: nil, msg, EFULL, and the store stays usable (DESIGN §8)", function()
      if h.lmdb_only(pending) then return end
      local eng = h.open(nil, { max_bytes = 1024 * 1024 })
      local first = assert(eng:start("k", "small", { id = "first" }))
      local code, msg
      for i = 1, 40 do
        local r, m, c = eng:start("k", string.rep("x", 100 * 1024), { id = "big-" .. i })
        if not r then
          msg, code = m, c
          h.fails("ENOENT", nil, eng:get("big-" .. i))
          break
        end
      end
      assert.are.equal("EFULL", code, tostring(msg))
      assert.is_string(msg)
      assert.are.equal("small", eng:get(first).input)
      assert.is_table(eng:stats())
    end)

    it("keeps rows across close and reopen (durability full)", function()
      local dir = h.store_path()
      local eng = assert(lash.open(dir, { durability = "full" }))
      local id = assert(eng:start("k", { x = 1 }, { id = "persist-1" }))
      eng:close()
      local eng2 = h.open(dir, { durability = "full" })
      local r = assert(eng2:get(id))
      assert.are.equal("k", r.kind)
      assert.are.same({ x = 1 }, r.input)
      assert.are.equal("pending", r.status)
    end)

    it("a closed engine raises on every call, saying it is closed", function()
      local eng = assert(lash.open(h.store_path(), { durability = "none" }))
      local id = assert(eng:start("k", 1))
      eng:close()
      local calls = {
        function() eng:start("k", 1) end,
        function() eng:get(id) end,
        function() eng:events(id) end,
        function() eng:list {} end,
        function() eng:await(id, { timeout_ms = 10 }) end,
        function() eng:await_event(id, "x", 0, { timeout_ms = 10 }) end,
        function() eng:signal(id, "go", 1) end,
        function() eng:cancel(id, "r") end,
        function() eng:define("k2", function() end) end,
        function() eng:drive() end,
        function() eng:run_once() end,
        function() eng:run { until_idle = true } end,
        function() eng:stats() end,
        function() eng:prune { before_ms = 0 } end,
        function() eng:abandon(id, "why") end,
        function() eng:complete(id, { status = "completed" }, { authority = "external" }) end,
        function() eng:batch(function() end) end,
        function() eng:spawn(function() end) end,
        function() eng:on_event(function() end) end,
      }
      for i, f in ipairs(calls) do
        local ok, err = pcall(f)
        assert.is_false(ok, "call #" .. i .. " on a closed engine did not raise")
        assert.is_truthy(tostring(err):find("closed"),
          "call #" .. i .. ": error should say closed: " .. tostring(err))
      end
    end)

    it("closes through <close>", function()
      local eng
      do
        local e <close> = assert(lash.open(h.store_path(), { durability = "none" }))
        eng = e
        assert(e:start("k", 1))
      end
      local ok, err = pcall(eng.get, eng, "x")
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find("closed"))
    end)
  end)

  describe("define / load", function()
    it("raises on bad argument types, naming them", function()
      local eng = h.open()
      h.raises_naming(function() eng:define(42, function() end) end, "kind")
      h.raises_naming(function() eng:define({}, function() end) end, "kind")
      local ok, err = pcall(eng.define, eng, "k", 42)
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find("fn", 1, true) or tostring(err):find("body", 1, true),
        "error should name the body argument: " .. tostring(err))
      h.raises_naming(function() eng:define("k", function() end, 42) end, "opts")
      h.raises_naming(function()
        eng:define("k", function() end, { max_attempts = "x" })
      end, "max_attempts")
    end)

    it("refuses an unknown disposition, naming it", function()
      local eng = h.open()
      h.refuses(function()
        return eng:define("k", function() end, { disposition = "sometimes" })
      end, "disposition")
    end)

    it("defaults the disposition to rerunnable and passes define opts to start", function()
      local eng = h.open()
      eng:define("plain", function() return 1 end)
      eng:define("bound", function() return 2 end,
        { disposition = "owner_bound", max_attempts = 3 })
      local a = assert(eng:start("plain", nil))
      local b = assert(eng:start("bound", nil))
      assert.are.equal("rerunnable", eng:get(a).disposition)
      local rb = eng:get(b)
      assert.are.equal("owner_bound", rb.disposition)
      assert.are.equal(3, rb.max_attempts)
      assert.are.same({ status = "completed", value = 1 }, await(eng, a))
      assert.are.same({ status = "completed", value = 2 }, await(eng, b))
    end)

    it("loads a file returning {kind = fn | {fn, opts}}", function()
      local eng = h.open()
      local path = h.tmpdir() .. "/procs.lua"
      h.write_file(path, [[
return {
  double = function(ctx, input) return input * 2 end,
  bound = { function(ctx, input) return "b:" .. input end, { disposition = "owner_bound" } },
}
]])
      assert.is_truthy(eng:load(path))
      local a = assert(eng:start("double", 21))
      local b = assert(eng:start("bound", "x"))
      assert.are.equal("owner_bound", eng:get(b).disposition)
      assert.are.same({ status = "completed", value = 42 }, await(eng, a))
      assert.are.same({ status = "completed", value = "b:x" }, await(eng, b))
    end)

    it("loads every file of a directory", function()
      local eng = h.open()
      local dir = h.tmpdir()
      h.write_file(dir .. "/one.lua", "return { one = function() return 1 end }\n")
      h.write_file(dir .. "/two.lua", "return { two = function() return 2 end }\n")
      assert.is_truthy(eng:load(dir))
      local a = assert(eng:start("one", nil))
      local b = assert(eng:start("two", nil))
      assert.are.same({ status = "completed", value = 1 }, await(eng, a))
      assert.are.same({ status = "completed", value = 2 }, await(eng, b))
    end)

    it("returns nil, msg naming the file for a malformed script", function()
      local eng = h.open()
      local path = h.tmpdir() .. "/bad.lua"
      h.write_file(path, "return { oops = function( end }\n")
      local ok, msg, code = eng:load(path)
      assert.is_nil(ok)
      assert.is_string(msg)
      assert.is_truthy(msg:find("bad.lua", 1, true), "message should name the file: " .. msg)
      assert.is_string(code)
    end)

    it("returns nil, msg naming the file for a script that does not return a table", function()
      local eng = h.open()
      local path = h.tmpdir() .. "/notable.lua"
      h.write_file(path, "return 42\n")
      local ok, msg = eng:load(path)
      assert.is_nil(ok)
      assert.is_truthy(msg:find("notable.lua", 1, true), "message should name the file: " .. msg)
    end)

    it("returns nil, msg for a missing path", function()
      local eng = h.open()
      local path = h.tmpdir() .. "/missing.lua"
      local ok, msg = eng:load(path)
      assert.is_nil(ok)
      assert.is_truthy(msg:find("missing.lua", 1, true), "message should name the path: " .. msg)
    end)

    it("raises on a non-string path", function()
      local eng = h.open()
      h.raises_naming(function() eng:load(42) end, "path")
    end)
  end)

  describe("start / get", function()
    it("registers a pending row with the documented record fields", function()
      local eng = h.open()
      local t0 = h.now_ms()
      local id = assert(eng:start("greet", { name = "ada" }, { id = "greet-1" }))
      assert.are.equal("greet-1", id)
      local r = assert(eng:get(id))
      assert.are.equal("greet-1", r.id)
      assert.are.equal("greet", r.kind)
      assert.are.same({ name = "ada" }, r.input)
      assert.are.equal("rerunnable", r.disposition)
      assert.is_nil(r.max_attempts)
      assert.are.equal("pending", r.status)
      assert.is_nil(r.attempt)
      assert.is_nil(r.outcome)
      assert.is_nil(r.wait)
      assert.is_falsy(r.cancel_requested)
      assert.is_nil(r.abandon_request)
      assert.are.equal("integer", math.type(r.created_at))
      assert.are.equal("integer", math.type(r.updated_at))
      assert.is_true(r.created_at >= t0 - 1000 and r.created_at <= h.now_ms() + 1000,
        "created_at should be wall-clock ms")
      assert.is_true(r.updated_at >= r.created_at)
    end)

    it("takes disposition and max_attempts from opts without a definition", function()
      local eng = h.open()
      local a = assert(eng:start("elsewhere", 1, { disposition = "owner_bound", max_attempts = 2 }))
      local r = eng:get(a)
      assert.are.equal("owner_bound", r.disposition)
      assert.are.equal(2, r.max_attempts)
      local b = assert(eng:start("elsewhere", 1, { disposition = "external" }))
      assert.are.equal("external", eng:get(b).disposition)
    end)

    it("generates distinct, time-ordered ids", function()
      local eng = h.open()
      local prev
      local seen = {}
      for _ = 1, 50 do
        local id = assert(eng:start("k", nil))
        assert.is_string(id)
        assert.is_true(#id >= 1 and #id <= 255)
        assert.is_nil(seen[id])
        seen[id] = true
        if prev then assert.is_true(id > prev, id .. " should sort after " .. prev) end
        prev = id
      end
    end)

    it("is idempotent per id and identical definition (S8.2)", function()
      local eng = h.open()
      local id, created = eng:register("k", { v = 1 }, { id = "same" })
      assert.are.same({ "same", true }, { id, created })
      local before = eng:stats().change_seq
      local nev = #eng:events(id)
      local r1 = eng:get(id)
      assert.are.same({ id, false }, { eng:register("k", { v = 1 }, { id = "same" }) })
      assert.are.same({ id }, { eng:start("k", { v = 1 }, { id = "same" }) })
      assert.are.equal(before, eng:stats().change_seq)
      assert.are.equal(nev, #eng:events(id))
      assert.are.same(r1, eng:get(id))
      assert.are.equal(1, h.count_rows(eng))
    end)

    it("is idempotent also after the row completed", function()
      local eng = h.open()
      eng:define("k", function(_, input) return input end)
      local id = assert(eng:start("k", 5, { id = "done-once" }))
      assert.are.same({ status = "completed", value = 5 }, await(eng, id))
      assert.are.equal(id, eng:start("k", 5, { id = "done-once" }))
      eng:run { until_idle = true }
      assert.are.equal("completed", eng:get(id).status)
      assert.are.equal(1, #h.events_of(eng, id, "process.started"))
    end)

    it("returns ECONFLICT for another definition and leaves the row unchanged (S8.3)", function()
      local eng = h.open()
      local id = assert(eng:start("k", { v = 1 }, { id = "c1" }))
      local r1 = eng:get(id)
      local seq = eng:stats().change_seq
      h.fails("ECONFLICT", nil, eng:start("k", { v = 2 }, { id = "c1" }))
      h.fails("ECONFLICT", nil, eng:start("other", { v = 1 }, { id = "c1" }))
      h.fails("ECONFLICT", nil,
        eng:start("k", { v = 1 }, { id = "c1", disposition = "owner_bound" }))
      h.fails("ECONFLICT", nil, eng:start("k", { v = 1 }, { id = "c1", max_attempts = 4 }))
      assert.are.same(r1, eng:get(id))
      assert.are.equal(seq, eng:stats().change_seq)
      assert.are.equal(1, h.count_rows(eng))
    end)

    it("raises on bad argument types, naming them", function()
      local eng = h.open()
      h.raises_naming(function() eng:start(42) end, "kind")
      h.raises_naming(function() eng:start({}, 1) end, "kind")
      h.raises_naming(function() eng:start(nil, 1) end, "kind")
      h.raises_naming(function() eng:start("k", 1, 42) end, "opts")
      h.raises_naming(function() eng:start("k", 1, { id = 42 }) end, "id")
      h.raises_naming(function() eng:start("k", 1, { id = {} }) end, "id")
      h.raises_naming(function() eng:start("k", 1, { max_attempts = "x" }) end, "max_attempts")
      h.raises_naming(function() eng:start("k", 1, { disposition = 7 }) end, "disposition")
      assert.are.equal(0, h.count_rows(eng))
    end)

    it("refuses bad ids, dispositions and max_attempts = 0, writing nothing (S8.4)", function()
      local eng = h.open()
      h.refuses(function() return eng:start("k", 1, { id = "" }) end, "id")
      h.refuses(function() return eng:start("k", 1, { id = string.rep("x", 256) }) end, "id")
      h.refuses(function() return eng:start("k", 1, { disposition = "sometimes" }) end,
        "disposition")
      h.refuses(function() return eng:start("k", 1, { max_attempts = 0 }) end, "max_attempts")
      assert.are.equal(0, h.count_rows(eng))
      assert.is_truthy(eng:start("k", 1, { id = string.rep("x", 255) }))
    end)

    it("get of an unknown id returns nil, msg naming it, ENOENT", function()
      local eng = h.open()
      h.fails("ENOENT", "no-such-id-123", eng:get("no-such-id-123"))
    end)

    it("get raises on a non-string id, naming it", function()
      local eng = h.open()
      h.raises_naming(function() eng:get({}) end, "id")
      h.raises_naming(function() eng:get(true) end, "id")
      h.raises_naming(function() eng:get() end, "id")
    end)

    it("records attempt and outcome after a run", function()
      local eng = h.open(nil, { owner = "owner-x" })
      eng:define("k", function() return "ok" end)
      local id = assert(eng:start("k", nil))
      local t0 = h.now_ms()
      assert.are.same({ status = "completed", value = "ok" }, await(eng, id))
      local r = eng:get(id)
      assert.are.equal("completed", r.status)
      assert.are.same({ status = "completed", value = "ok" }, r.outcome)
      assert.is_table(r.attempt)
      assert.are.equal("owner-x", r.attempt.owner)
      assert.are.equal(1, r.attempt.number)
      assert.are.equal("integer", math.type(r.attempt.fence))
      assert.is_true(r.attempt.fence >= 1)
      assert.are.equal("integer", math.type(r.attempt.started_at))
      assert.is_true(r.attempt.started_at >= t0 - 1000)
      assert.is_nil(r.wait)
    end)
  end)

  describe("events", function()
    it("returns {seq, type, payload, at} with strictly increasing seqs from 1 (S8.9)", function()
      local eng = h.open()
      eng:define("k", function(ctx)
        ctx:emit("a", 1)
        ctx:emit("b", { x = 2 })
        return true
      end)
      local id = assert(eng:start("k", nil))
      await(eng, id)
      local evs = assert(eng:events(id))
      assert.is_true(#evs >= 4)
      assert.are.equal(1, evs[1].seq)
      local types = {}
      for i, ev in ipairs(evs) do
        assert.are.equal("integer", math.type(ev.seq))
        assert.are.equal("integer", math.type(ev.at))
        assert.is_string(ev.type)
        if i > 1 then assert.is_true(ev.seq > evs[i - 1].seq) end
        types[#types + 1] = ev.type
      end
      assert.are.equal("process.started", types[1])
      assert.are.equal("process.completed", types[#types])
      local a = h.events_of(eng, id, "a")
      local b = h.events_of(eng, id, "b")
      assert.are.equal(1, #a)
      assert.are.equal(1, a[1].payload)
      assert.are.same({ x = 2 }, b[1].payload)
      assert.is_true(b[1].seq > a[1].seq)
    end)

    it("returns exactly the events after after_seq, at most limit", function()
      local eng = h.open()
      eng:define("k", function(ctx)
        for i = 1, 5 do ctx:emit("tick", i) end
        return true
      end)
      local id = assert(eng:start("k", nil))
      await(eng, id)
      local all = eng:events(id, 0)
      local n = #all
      local mid = all[3].seq
      local after = eng:events(id, mid)
      assert.are.equal(n - 3, #after)
      for i, ev in ipairs(after) do
        assert.are.same(all[3 + i], ev)
      end
      local lim = eng:events(id, 0, 2)
      assert.are.equal(2, #lim)
      assert.are.same(all[1], lim[1])
      assert.are.same(all[2], lim[2])
      assert.are.same({}, eng:events(id, all[n].seq))
    end)

    it("unknown id: nil, msg naming it, ENOENT", function()
      local eng = h.open()
      h.fails("ENOENT", "ghost-7", eng:events("ghost-7"))
    end)

    it("raises on bad argument types, naming them", function()
      local eng = h.open()
      local id = assert(eng:start("k", nil))
      h.raises_naming(function() eng:events({}) end, "id")
      h.raises_naming(function() eng:events(id, "x") end, "after")
      h.raises_naming(function() eng:events(id, 0, "x") end, "limit")
    end)
  end)

  describe("list", function()
    local function ids(rows)
      local out = {}
      for i, r in ipairs(rows) do out[i] = r.id end
      return out
    end

    it("filters by status and kind, pages with limit and after, in id order", function()
      local eng = h.open()
      eng:define("ok", function() return 1 end)
      eng:define("bad", function() error("nope") end)
      local o1 = assert(eng:start("ok", nil, { id = "a1" }))
      local o2 = assert(eng:start("ok", nil, { id = "a2" }))
      local b1 = assert(eng:start("bad", nil, { id = "a3" }))
      local p1 = assert(eng:start("idle", nil, { id = "a4" }))
      eng:run { until_idle = true }
      assert.are.same({ o1, o2, b1, p1 }, ids(eng:list {}))
      assert.are.same({ b1 }, ids(eng:list { status = "failed" }))
      assert.are.same({ o1, o2 }, ids(eng:list { status = "completed" }))
      assert.are.same({ p1 }, ids(eng:list { status = "pending" }))
      assert.are.same({ o1, o2 }, ids(eng:list { kind = "ok" }))
      assert.are.same({}, ids(eng:list { kind = "ok", status = "failed" }))
      assert.are.same({ o1, o2 }, ids(eng:list { limit = 2 }))
      assert.are.same({ b1, p1 }, ids(eng:list { after = o2 }))
      assert.are.same({ b1 }, ids(eng:list { after = o2, limit = 1 }))
      local rows = eng:list { status = "failed" }
      assert.are.equal("bad", rows[1].kind)
      assert.are.equal("failed", rows[1].outcome.status)
    end)

    it("raises on bad argument types, naming them", function()
      local eng = h.open()
      h.raises_naming(function() eng:list { status = 42 } end, "status")
      h.raises_naming(function() eng:list { kind = {} } end, "kind")
      h.raises_naming(function() eng:list { limit = "x" } end, "limit")
      h.raises_naming(function() eng:list { after = {} } end, "after")
    end)

    it("refuses an unknown status, naming it", function()
      local eng = h.open()
      h.refuses(function() return eng:list { status = "sleeping" } end, "status")
    end)
  end)

  describe("await / await_event", function()
    it("returns the outcome of a completed row", function()
      local eng = h.open()
      eng:define("k", function(_, input) return { got = input } end)
      local id = assert(eng:start("k", 7))
      assert.are.same({ status = "completed", value = { got = 7 } }, await(eng, id))
    end)

    it("times out with nil, msg, ETIMEDOUT", function()
      local eng = h.open()
      local id = assert(eng:start("undefined-kind", nil))
      local t0 = h.mono_ms()
      h.fails("ETIMEDOUT", nil, eng:await(id, { timeout_ms = 150 }))
      local dt = h.mono_ms() - t0
      assert.is_true(dt >= 140, "returned after " .. dt .. " ms")
      assert.are.equal("pending", eng:get(id).status)
    end)

    it("unknown id: nil, msg naming it, ENOENT (S8.53)", function()
      local eng = h.open()
      h.fails("ENOENT", "nobody-here", eng:await("nobody-here", { timeout_ms = 100 }))
      h.fails("ENOENT", "nobody-here",
        eng:await_event("nobody-here", "x", 0, { timeout_ms = 100 }))
    end)

    it("await_event returns the event, or ETIMEDOUT", function()
      local eng = h.open()
      eng:define("k", function(ctx)
        ctx:emit("progress", { pct = 50 })
        return true
      end)
      local id = assert(eng:start("k", nil))
      local ev = assert(eng:await_event(id, "progress", 0, { timeout_ms = 5000 }))
      assert.are.equal("progress", ev.type)
      assert.are.same({ pct = 50 }, ev.payload)
      assert.are.equal("integer", math.type(ev.seq))
      assert.are.equal("integer", math.type(ev.at))
      h.fails("ETIMEDOUT", nil, eng:await_event(id, "progress", ev.seq, { timeout_ms = 100 }))
    end)

    it('await_event with type "*" returns the next event of any type', function()
      local eng = h.open()
      local id = assert(eng:start("undefined-kind", nil))
      local seen
      eng:spawn(function() seen = eng:await_event(id, "*", 0, { timeout_ms = 5000 }) end)
      eng:run_once()
      assert.is_nil(seen)
      local seq = assert(eng:signal(id, "poke", { n = 1 }))
      h.wait_until(eng, function() return seen ~= nil end, 5000)
      assert.are.equal("signal.poke", seen.type)
      assert.are.equal(seq, seen.seq)
      h.fails("ETIMEDOUT", nil, eng:await_event(id, "*", seq, { timeout_ms = 100 }))
    end)

    it("raises on bad argument types, naming them", function()
      local eng = h.open()
      local id = assert(eng:start("k", nil))
      h.raises_naming(function() eng:await({}) end, "id")
      h.raises_naming(function() eng:await(id, 42) end, "opts")
      h.raises_naming(function() eng:await(id, { timeout_ms = "x" }) end, "timeout_ms")
      h.raises_naming(function() eng:await_event({}, "x", 0) end, "id")
      h.raises_naming(function() eng:await_event(id, {}, 0) end, "type")
      h.raises_naming(function() eng:await_event(id, "x", "y") end, "after")
    end)
  end)

  describe("signal", function()
    it("returns the seq of a signal.<name> event carrying the payload", function()
      local eng = h.open()
      local id = assert(eng:start("k", nil))
      local seq = assert(eng:signal(id, "approve", { by = "bob" }))
      assert.are.equal("integer", math.type(seq))
      local evs = h.events_of(eng, id, "signal.approve")
      assert.are.equal(1, #evs)
      assert.are.equal(seq, evs[1].seq)
      assert.are.same({ by = "bob" }, evs[1].payload)
      local seq2 = assert(eng:signal(id, "approve", 2))
      assert.is_true(seq2 > seq)
    end)

    it("on a terminal row: nil, msg, ETERMINAL and nothing written (S8.17)", function()
      local eng = h.open()
      eng:define("k", function() return 1 end)
      local id = assert(eng:start("k", nil))
      await(eng, id)
      local cs = eng:stats().change_seq
      local n = #eng:events(id)
      h.fails("ETERMINAL", nil, eng:signal(id, "late", 1))
      assert.are.equal(cs, eng:stats().change_seq)
      assert.are.equal(n, #eng:events(id))
    end)

    it("unknown id: nil, msg naming it, ENOENT", function()
      local eng = h.open()
      h.fails("ENOENT", "ghost-s", eng:signal("ghost-s", "go", 1))
    end)

    it("raises on bad argument types, naming them", function()
      local eng = h.open()
      local id = assert(eng:start("k", nil))
      h.raises_naming(function() eng:signal({}, "go", 1) end, "id")
      h.raises_naming(function() eng:signal(id, {}, 1) end, "name")
      h.raises_naming(function() eng:signal(id, nil, 1) end, "name")
    end)

    it("refuses a malformed signal name, writing nothing", function()
      local eng = h.open()
      local id = assert(eng:start("k", nil))
      local n = #eng:events(id)
      h.refuses(function() return eng:signal(id, "", 1) end, "name")
      h.refuses(function() return eng:signal(id, "has space", 1) end, "name")
      assert.are.equal(n, #eng:events(id))
    end)
  end)

  describe("cancel", function()
    it("cancels a pending row at once, with the reason", function()
      local eng = h.open()
      local id = assert(eng:start("never-defined", nil))
      assert.is_truthy(eng:cancel(id, "no longer needed"))
      local r = eng:get(id)
      assert.are.equal("cancelled", r.status)
      assert.is_truthy(r.cancel_requested)
      assert.are.same({ status = "cancelled", reason = "no longer needed" }, r.outcome)
      assert.are.same({ status = "cancelled", reason = "no longer needed" }, await(eng, id))
    end)

    it("leaves a terminal row's outcome alone", function()
      local eng = h.open()
      eng:define("k", function() return 1 end)
      local id = assert(eng:start("k", nil))
      await(eng, id)
      local before = eng:get(id)
      eng:cancel(id, "too late")
      local after = eng:get(id)
      assert.are.equal("completed", after.status)
      assert.are.same(before.outcome, after.outcome)
    end)

    it("unknown id: nil, msg naming it, ENOENT", function()
      local eng = h.open()
      h.fails("ENOENT", "ghost-c", eng:cancel("ghost-c", "r"))
    end)

    it("raises on bad argument types, naming them", function()
      local eng = h.open()
      local id = assert(eng:start("k", nil))
      h.raises_naming(function() eng:cancel({}, "r") end, "id")
      h.raises_naming(function() eng:cancel(id, {}) end, "reason")
    end)
  end)

  describe("drive / run / run_once / stop / spawn", function()
    it("starts a row of a kind defined here in the commit that registers it", function()
      local eng = h.open(nil, { durability = "full" })
      eng:define("k", function(_, input) return input * 2 end)
      eng:run { until_idle = true } -- the drive that define asks for
      local c0 = eng:stats().commits
      local id = assert(eng:start("k", 21))
      local rec = eng:get(id)
      assert.are.equal("running", rec.status)
      assert.are.equal(1, rec.attempt.number)
      assert.are.equal(c0 + 1, eng:stats().commits)
      assert.are.same({ status = "completed", value = 42 }, eng:await(id))
      assert.are.equal(c0 + 2, eng:stats().commits)
    end)

    it("leaves a row pending with eager_start = false until a drive", function()
      local eng = h.open(nil, { eager_start = false })
      eng:define("k", function() return 1 end)
      local id = assert(eng:start("k", nil))
      assert.are.equal("pending", eng:get(id).status)
      assert.are.same({ status = "completed", value = 1 }, eng:await(id))
    end)

    it("drive admits the rows of defined kinds and reports counts", function()
      -- eager_start = false: rows stay pending until a drive claims them
      local eng = h.open(nil, { eager_start = false })
      local ran = 0
      eng:define("k", function() ran = ran + 1 return ran end)
      for _ = 1, 3 do assert(eng:start("k", nil)) end
      local other = assert(eng:start("not-here", nil))
      local rep = eng:drive()
      assert.is_table(rep)
      assert.are.equal(3, rep.admitted)
      assert.are.equal("integer", math.type(rep.deferred))
      eng:run { until_idle = true }
      assert.are.equal(3, ran)
      assert.are.equal(3, eng:stats().completed)
      assert.are.equal("pending", eng:get(other).status)
    end)

    it("run{until_idle=true} returns once everything runnable is done", function()
      local eng = h.open()
      eng:define("k", function(ctx, n)
        ctx:sleep(20)
        return n
      end)
      local ids = {}
      for i = 1, 10 do ids[i] = assert(eng:start("k", i)) end
      eng:run { until_idle = true }
      for i, id in ipairs(ids) do
        local r = eng:get(id)
        assert.are.equal("completed", r.status)
        assert.are.equal(i, r.outcome.value)
      end
    end)

    it("run{until_idle=true} returns with an undefined-kind or external row left", function()
      local eng = h.open()
      eng:define("ext", function() error("must not run") end)
      local a = assert(eng:start("ext", nil, { disposition = "external" }))
      local b = assert(eng:start("unknown", nil))
      local t0 = h.mono_ms()
      eng:run { until_idle = true }
      assert.is_true(h.mono_ms() - t0 < 5000)
      assert.are.equal("pending", eng:get(a).status)
      assert.are.equal("pending", eng:get(b).status)
    end)

    it("run() runs until stop() is called from an engine coroutine", function()
      local eng = h.open()
      eng:define("k", function(ctx)
        ctx:sleep(30)
        return "done"
      end)
      local id = assert(eng:start("k", nil))
      local seen
      eng:spawn(function()
        seen = eng:await(id, { timeout_ms = 5000 })
        eng:stop()
      end)
      eng:run()
      assert.are.same({ status = "completed", value = "done" }, seen)
    end)

    it("run_once advances the loop", function()
      local eng = h.open()
      eng:define("k", function() return 3 end)
      local id = assert(eng:start("k", nil))
      assert.is_truthy(h.wait_until(eng, function()
        return eng:get(id).status == "completed"
      end, 5000))
    end)

    it("spawn runs fn as an engine coroutine whose awaits yield", function()
      local eng = h.open()
      eng:define("k", function(ctx) return ctx:await_signal("go", { timeout_ms = 5000 }) end)
      local id = assert(eng:start("k", nil))
      local order = {}
      local outcome
      eng:spawn(function()
        order[#order + 1] = "a-waits"
        outcome = eng:await(id, { timeout_ms = 5000 })
        order[#order + 1] = "a-resolved"
      end)
      eng:spawn(function()
        order[#order + 1] = "b-runs"
        -- If a's await blocked the loop instead of yielding, b would never run
        -- before a timed out.
        assert(eng:await_event(id, "process.waiting", 0, { timeout_ms = 5000 }))
        eng:signal(id, "go", "went")
        order[#order + 1] = "b-signalled"
      end)
      assert.is_truthy(h.wait_until(eng, function() return outcome ~= nil end, 6000))
      assert.are.same({ status = "completed", value = "went" }, outcome)
      assert.are.same({ "a-waits", "b-runs", "b-signalled", "a-resolved" }, order)
    end)

    it("raises on bad argument types, naming them", function()
      local eng = h.open()
      h.raises_naming(function() eng:spawn(42) end, "fn")
      h.raises_naming(function() eng:on_event(42) end, "fn")
      h.raises_naming(function() eng:batch(42) end, "fn")
    end)
  end)

  describe("complete / abandon (external rows)", function()
    it("complete with authority external closes an external row", function()
      local eng = h.open()
      local id = assert(eng:start("remote", nil, { disposition = "external" }))
      assert.is_truthy(eng:complete(id, { status = "completed", value = { ok = true } },
        { authority = "external" }))
      local r = eng:get(id)
      assert.are.equal("completed", r.status)
      assert.are.same({ status = "completed", value = { ok = true } }, r.outcome)
      assert.are.same({ status = "completed", value = { ok = true } }, await(eng, id))
      assert.are.equal(1, #h.events_of(eng, id, "process.completed"))
    end)

    it("complete can record a failed outcome", function()
      local eng = h.open()
      local id = assert(eng:start("remote", nil, { disposition = "external" }))
      assert.is_truthy(eng:complete(id, { status = "failed", error = { message = "remote broke" } },
        { authority = "external" }))
      local o = await(eng, id)
      assert.are.equal("failed", o.status)
      assert.is_truthy(o.error.message:find("remote broke", 1, true))
    end)

    it("complete with authority external is refused on a rerunnable row (S8.18)", function()
      local eng = h.open()
      local id = assert(eng:start("k", nil))
      local cs = eng:stats().change_seq
      local ok, msg, code = eng:complete(id, { status = "completed", value = 1 },
        { authority = "external" })
      assert.is_nil(ok)
      assert.is_string(msg)
      assert.is_string(code)
      assert.are.equal("pending", eng:get(id).status)
      assert.are.equal(cs, eng:stats().change_seq)
    end)

    it("complete of an unknown id: nil, msg naming it, ENOENT", function()
      local eng = h.open()
      h.fails("ENOENT", "ghost-x", eng:complete("ghost-x", { status = "completed", value = 1 },
        { authority = "external" }))
    end)

    it("complete raises on bad argument types, naming them", function()
      local eng = h.open()
      local id = assert(eng:start("remote", nil, { disposition = "external" }))
      h.raises_naming(function()
        eng:complete({}, { status = "completed" }, { authority = "external" })
      end, "id")
      h.raises_naming(function() eng:complete(id, 42, { authority = "external" }) end, "outcome")
      h.raises_naming(function()
        eng:complete(id, { status = "completed" }, { authority = 42 })
      end, "authority")
    end)

    it("abandon of an external row ends it abandoned, reconciled, no owner (S8.65)", function()
      local eng = h.open()
      eng:define("remote", function() error("an external row must never run") end)
      local id = assert(eng:start("remote", nil, { disposition = "external" }))
      assert.is_truthy(eng:abandon(id, "gone"))
      assert.is_truthy(eng:get(id).abandon_request)
      eng:drive()
      local o = await(eng, id)
      assert.are.equal("abandoned", o.status)
      assert.are.equal("reconciled_request", o.writer)
      assert.is_nil(o.owner)
    end)

    it("abandon of an unknown id: nil, msg naming it, ENOENT", function()
      local eng = h.open()
      h.fails("ENOENT", "ghost-a", eng:abandon("ghost-a", "why"))
    end)

    it("abandon raises on bad argument types, naming them", function()
      local eng = h.open()
      h.raises_naming(function() eng:abandon({}, "why") end, "id")
    end)
  end)

  describe("prune", function()
    it("removes terminal rows before the cutoff and reports counts (S8.46/47)", function()
      local eng = h.open()
      eng:define("k", function() return 1 end)
      eng:define("bad", function() error("x") end)
      local a = assert(eng:start("k", nil))
      local b = assert(eng:start("k", nil))
      local f = assert(eng:start("bad", nil))
      local live = assert(eng:start("undefined", nil))
      eng:run { until_idle = true }
      local nev = #eng:events(a) + #eng:events(b)
      local rep = eng:prune { before_ms = h.now_ms() + 3600 * 1000, status = "completed" }
      assert.are.equal(2, rep.processes)
      assert.are.equal(nev, rep.events)
      h.fails("EPRUNED", nil, eng:get(a))
      assert.are.equal("failed", eng:get(f).status)
      assert.are.equal("pending", eng:get(live).status)
      local rep2 = eng:prune { before_ms = h.now_ms() + 3600 * 1000 }
      assert.are.equal(1, rep2.processes)
      assert.are.equal("pending", eng:get(live).status)
    end)

    it("after prune, events, signal, cancel and await_event report EPRUNED (S8.48)", function()
      local eng = h.open()
      eng:define("k", function() return 1 end)
      local id = assert(eng:start("k", nil, { id = "pruned-1" }))
      await(eng, id)
      assert.are.equal(1, eng:prune { before_ms = h.now_ms() + 3600 * 1000 }.processes)
      local cs = eng:stats().change_seq
      h.fails("EPRUNED", nil, eng:events(id))
      h.fails("EPRUNED", nil, eng:signal(id, "go", 1))
      h.fails("EPRUNED", nil, eng:cancel(id, "late"))
      h.fails("EPRUNED", nil, eng:abandon(id, "late"))
      assert.are.equal(cs, eng:stats().change_seq)
    end)

    it("keeps rows updated at or after before_ms", function()
      local eng = h.open()
      eng:define("k", function() return 1 end)
      local a = assert(eng:start("k", nil))
      await(eng, a)
      local rep = eng:prune { before_ms = 0 }
      assert.are.equal(0, rep.processes)
      assert.are.equal(0, rep.events)
      assert.are.equal("completed", eng:get(a).status)
    end)

    it("lets a pruned id be started anew", function()
      local eng = h.open()
      eng:define("k", function(_, n) return n end)
      local id = assert(eng:start("k", 1, { id = "again" }))
      await(eng, id)
      local last = eng:events(id)
      local last_seq = last[#last].seq
      eng:prune { before_ms = h.now_ms() + 3600 * 1000 }
      assert.are.equal(id, eng:start("k", 2, { id = "again" }))
      assert.are.same({ status = "completed", value = 2 }, await(eng, id))
      -- sequences continue after the pruned incarnation's
      assert.is_true(eng:events(id)[1].seq > last_seq)
    end)

    it("raises on bad argument types, naming them", function()
      local eng = h.open()
      h.raises_naming(function() eng:prune { before_ms = "x" } end, "before_ms")
      h.raises_naming(function() eng:prune { before_ms = 0, status = 42 } end, "status")
    end)
  end)

  describe("check / pause", function()
    it("check returns no problems on a store after every kind of write", function()
      local eng = h.open()
      eng:define("ok", function(ctx) ctx:emit("p", 1) return 1 end)
      eng:define("bad", function() error("x") end)
      local a = assert(eng:start("ok", nil))
      assert(eng:start("bad", nil))
      local c = assert(eng:start("undefined-kind", nil))
      assert(eng:signal(c, "s", true))
      assert(eng:cancel(c, "stop"))
      eng:await(a)
      eng:run { until_idle = true }
      assert(eng:prune { before_ms = eng:now() + 1 })
      assert.are.same({}, eng:check())
    end)

    it("pause stops admission and resume starts it again", function()
      local eng = h.open()
      local ran = 0
      eng:define("k", function() ran = ran + 1 return ran end)
      eng:pause(true)
      local id = assert(eng:start("k", nil))
      assert.are.equal(0, eng:drive().admitted)
      eng:run { until_idle = true }
      assert.are.equal(0, ran)
      assert.are.equal("pending", eng:get(id).status)
      eng:pause(false)
      assert.are.same({ status = "completed", value = 1 }, eng:await(id))
    end)
  end)

  describe("stats", function()
    it("counts rows per status and tracks change_seq and backoff_reads", function()
      local eng = h.open(nil, { eager_start = false })
      local s0 = eng:stats()
      for _, st in ipairs(STATUSES) do
        assert.are.equal("integer", math.type(s0[st]), "stats." .. st)
        assert.are.equal(0, s0[st])
      end
      assert.are.equal("integer", math.type(s0.change_seq))
      assert.are.equal("integer", math.type(s0.backoff_reads))
      eng:define("ok", function() return 1 end)
      eng:define("bad", function() error("x") end)
      assert(eng:start("ok", nil))
      assert(eng:start("ok", nil))
      assert(eng:start("bad", nil))
      assert(eng:start("idle", nil))
      local s1 = eng:stats()
      assert.are.equal(4, s1.pending)
      assert.is_true(s1.change_seq > s0.change_seq)
      eng:run { until_idle = true }
      local s2 = eng:stats()
      assert.are.equal(2, s2.completed)
      assert.are.equal(1, s2.failed)
      assert.are.equal(1, s2.pending)
      assert.is_true(s2.change_seq > s1.change_seq)
    end)

    it("bytes_data counts the pages holding data: it grows with rows, below bytes_used", function()
      local eng = h.open(nil, { eager_start = false })
      local s0 = eng:stats()
      assert.are.equal("integer", math.type(s0.bytes_data))
      assert.is_true(s0.bytes_data > 0)
      assert.is_true(s0.bytes_data <= s0.bytes_used or h.pg, "bytes_data beyond bytes_used")
      eng:batch(function()
        for i = 1, 2000 do assert(eng:start("k", { i = i, pad = ("x"):rep(200) })) end
      end)
      local s1 = eng:stats()
      -- 2000 inputs of 200+ bytes each: at least 400 kB more data
      assert.is_true(s1.bytes_data - s0.bytes_data >= 400000,
        ("bytes_data %d -> %d"):format(s0.bytes_data, s1.bytes_data))
      assert.is_true(s1.bytes_data <= s1.bytes_used or h.pg)
    end)
  end)

  describe("payloads that cannot be stored", function()
    local function assert_nothing_written(eng, before_seq, before_rows, fn)
      local r1, r2, r3 = fn()
      assert.is_nil(r1)
      assert.is_string(r2)
      assert.are.equal(before_seq, eng:stats().change_seq)
      assert.are.equal(before_rows, h.count_rows(eng))
      return r3
    end

    it("start with a non-encodable input: nil, msg, EINVAL, nothing written", function()
      local eng = h.open()
      local victim = assert(eng:start("k", nil))
      local cyc = {}
      cyc.self = cyc
      local deep = {}
      local cur = deep
      for _ = 1, 200 do cur.n = {} cur = cur.n end
      local bad = {
        print, function() end, coroutine.create(function() end), io.stdout, cyc, deep,
        { ok = 1, nested = { f = print } }, { 1, 2, coroutine.running() },
      }
      local seq, rows = eng:stats().change_seq, h.count_rows(eng)
      for i, v in ipairs(bad) do
        local code = assert_nothing_written(eng, seq, rows, function()
          return eng:start("k", v, { id = "bad-" .. i })
        end)
        assert.are.equal("EINVAL", code, "value #" .. i)
        h.fails("ENOENT", nil, eng:get("bad-" .. i))
      end
      local nev = #eng:events(victim)
      for i, v in ipairs(bad) do
        local code = assert_nothing_written(eng, seq, rows, function()
          return eng:signal(victim, "s", v)
        end)
        assert.are.equal("EINVAL", code, "signal value #" .. i)
      end
      assert.are.equal(nev, #eng:events(victim))
    end)

    it("payloads over max_payload: nil, msg, ETOOBIG, nothing written", function()
      local eng = h.open(nil, { max_payload = 1024 })
      local id = assert(eng:start("k", string.rep("a", 500)))
      local seq, rows = eng:stats().change_seq, h.count_rows(eng)
      local nev = #eng:events(id)
      assert.are.equal("ETOOBIG", assert_nothing_written(eng, seq, rows, function()
        return eng:start("k", string.rep("a", 2000))
      end))
      assert.are.equal("ETOOBIG", assert_nothing_written(eng, seq, rows, function()
        return eng:start("k", { big = string.rep("b", 600), more = string.rep("c", 600) })
      end))
      assert.are.equal("ETOOBIG", assert_nothing_written(eng, seq, rows, function()
        return eng:signal(id, "s", string.rep("a", 2000))
      end))
      assert.are.equal(nev, #eng:events(id))
    end)

    it("the default max_payload is 1 MiB", function()
      local eng = h.open()
      assert.is_truthy(eng:start("k", string.rep("x", 512 * 1024)))
      local r1, _, code = eng:start("k", string.rep("x", 1024 * 1024 + 1))
      assert.is_nil(r1)
      assert.are.equal("ETOOBIG", code)
    end)
  end)
end)
