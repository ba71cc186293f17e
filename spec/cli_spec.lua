-- spec/cli_spec.lua - the `lash` executable (DESIGN §6) run as a real
-- process for every command: output, --json shapes, exit codes (0 ok,
-- 1 failure, 2 usage), messages naming the bad part, and that rejected
-- commands write nothing (the store's change_seq does not move).
local h = require "spec.helpers"
local cjson = require "cjson"

local BIN = os.getenv("LASH_BIN") or (h.root .. "/build/bindings/lash")

-- Runs `lash ARGS...` (strings are shell-quoted); returns code, stdout,
-- stderr. opts.stdin: text fed to stdin; opts.env: "VAR=value ..." prefix.
local function lash(args, opts)
  opts = opts or {}
  local dir = h.tmpdir()
  local parts = {}
  for i, a in ipairs(args) do parts[i] = h.q(a) end
  local stdin = "/dev/null"
  if opts.stdin then
    stdin = dir .. "/in"
    h.write_file(stdin, opts.stdin)
  end
  local cmd = string.format("cd %s && env %s %s %s <%s >%s/out 2>%s/err", h.q(opts.cwd or dir),
    opts.env or "", h.q(BIN), table.concat(parts, " "), h.q(stdin), h.q(dir), h.q(dir))
  local _, _, code = os.execute(cmd)
  return code, h.read_file(dir .. "/out") or "", h.read_file(dir .. "/err") or ""
end

-- `lash --db DB ARGS...`
local function on(db, ...)
  local args = { "--db", db }
  for _, a in ipairs({ ... }) do args[#args + 1] = a end
  return lash(args)
end

local function json_of(db, ...)
  local code, out, err = on(db, ...)
  assert(code == 0, "lash " .. table.concat({ ... }, " ") .. " exited " .. code .. ": " .. err)
  return cjson.decode(out)
end

local function change_seq(db)
  return json_of(db, "stats", "--json").change_seq
end

-- A store with one pending row "p1" of kind "greet".
local function seeded()
  local db = h.store_path()
  local code, out = on(db, "start", "greet", '{"name":"ada"}', "--id", "p1")
  assert.are.equal(0, code)
  assert.are.equal("p1\n", out)
  return db
end

local KINDS = [[
return {
  greet = function(ctx, input)
    ctx:emit("progress", { pct = 50 })
    return { hello = input.name }
  end,
  nap = function(ctx, input)
    ctx:sleep(input and input.ms or 300)
    return { slept = true, attempt = ctx.attempt }
  end,
  slow_first = function(ctx)
    if ctx.attempt == 1 then ctx:sleep(5000) end
    return { attempt = ctx.attempt }
  end,
  boom = function() error("kaboom") end,
  gate = function(ctx)
    local v = ctx:await_signal("go", { timeout_ms = 5000 })
    return { got = v }
  end,
}
]]

local workers = {}
local function start_worker(db, ...)
  local w = h.cli_worker(db, { "--load", h.kinds_file(KINDS), ... })
  workers[#workers + 1] = w
  return w
end

describe("lash executable", function()
  after_each(function()
    for _, w in ipairs(workers) do
      if h.alive(w.pid) then w.kill("KILL") end
    end
    workers = {}
    h.cleanup()
  end)

  describe("global options", function()
    it("--version prints the version and exits 0", function()
      local code, out = lash { "--version" }
      assert.are.equal(0, code)
      assert.matches("^lash %d+%.%d+%.%d+", out)
    end)

    it("--help lists every command; COMMAND --help describes it", function()
      local code, out = lash { "--help" }
      assert.are.equal(0, code)
      for _, c in ipairs { "repl", "run", "worker", "start", "ps", "show", "events", "await",
        "signal", "cancel", "prune", "stats", "check" } do
        assert.matches("\n  " .. c .. " ", out, 1, true)
        local ccode, cout, cerr = lash { c, "--help" }
        assert.are.equal(0, ccode, c .. " --help: " .. cerr)
        assert.matches("usage: lash [--db DIR] " .. c, cout, 1, true)
      end
    end)

    it("an unknown command or option is a usage error (exit 2)", function()
      local code, _, err = lash { "frobnicate" }
      assert.are.equal(2, code)
      assert.matches('unknown command "frobnicate"', err, 1, true)
      code, _, err = lash { "ps", "--colour" }
      assert.are.equal(2, code)
      assert.matches('unknown option "--colour"', err, 1, true)
      assert.matches("usage: lash", err, 1, true)
    end)

    it("uses $LASH_DB, else ./lash.db", function()
      local dir = h.tmpdir()
      local code = lash({ "start", "k", "--id", "a" }, { cwd = dir })
      assert.are.equal(0, code)
      assert.is_truthy(h.read_file(dir .. "/lash.db/data.mdb"))
      local db = h.store_path()
      code = lash({ "start", "k", "--id", "b" }, { env = "LASH_DB=" .. h.q(db) })
      assert.are.equal(0, code)
      assert.are.equal("b", json_of(db, "show", "b", "--json").id)
    end)

    it("a read command on a missing store fails without creating it", function()
      local db = h.store_path()
      local code, _, err = on(db, "ps")
      assert.are.equal(1, code)
      assert.matches("no store at", err, 1, true)
      assert.is_nil(io.open(db, "r"))
    end)
  end)

  describe("start, ps, show, stats", function()
    it("start prints the id; ps and show list it (text and --json)", function()
      local db = seeded()
      local code, out = on(db, "ps")
      assert.are.equal(0, code)
      assert.matches("^ID%s+KIND%s+STATUS%s+ATTEMPT%s+AGE\n", out)
      -- (no worker defines greet: the row is marked, issue 11)
      assert.matches("p1%s+greet%s+pending %(no worker%)%s+%-%s+%d+m?s\n", out)
      local list = json_of(db, "ps", "--json")
      assert.are.equal(1, #list)
      assert.are.equal("p1", list[1].id)
      assert.are.equal("ada", list[1].input.name)
      code, out = on(db, "show", "p1")
      assert.are.equal(0, code)
      assert.matches("id%s+p1\n", out)
      assert.matches("status%s+pending\n", out)
      assert.matches('input%s+{"name":"ada"}\n', out)
      local r = json_of(db, "show", "p1", "--json")
      assert.are.equal("greet", r.kind)
      assert.are.equal("rerunnable", r.disposition)
      assert.are.equal("number", type(r.created_at))
    end)

    it("start is idempotent per --id; --json gives {id}", function()
      local db = seeded()
      local seq = change_seq(db)
      assert.are.same({ id = "p1" }, json_of(db, "start", "greet", '{"name":"ada"}',
        "--id", "p1", "--json"))
      assert.are.equal(seq, change_seq(db))
      local code, _, err = on(db, "start", "greet", '{"name":"bob"}', "--id", "p1")
      assert.are.equal(1, code)
      assert.is_truthy(#err > 0)
      assert.are.equal(seq, change_seq(db))
    end)

    it("ps filters by --status, --kind and --limit; an empty list is []", function()
      local db = seeded()
      on(db, "start", "other", "--id", "p2")
      on(db, "start", "other", "--id", "p3")
      assert.are.equal(2, #json_of(db, "ps", "--kind", "other", "--json"))
      assert.are.equal(1, #json_of(db, "ps", "--limit", "1", "--json"))
      local code, out = on(db, "ps", "--status", "failed", "--json")
      assert.are.equal(0, code)
      assert.are.equal("[]\n", out)
      assert.are.equal(3, #json_of(db, "ps", "--status=live", "--json"))
    end)

    it("stats counts rows per status", function()
      local db = seeded()
      local s = json_of(db, "stats", "--json")
      assert.are.equal(1, s.pending)
      assert.are.equal(1, s.total)
      local code, out = on(db, "stats")
      assert.are.equal(0, code)
      assert.matches("pending%s+1\n", out)
      assert.matches("change_seq%s+%d+\n", out)
      assert.matches("bytes_per_row%s+%d+\n", out)
      assert.are.equal(s.bytes_data // s.total, s.bytes_per_row)
    end)

    it("check passes on a sound store (text and --json)", function()
      local db = seeded()
      local code, out = on(db, "check")
      assert.are.equal(0, code)
      assert.matches("^ok", out)
      assert.are.same({ ok = true, problems = {} }, json_of(db, "check", "--json"))
    end)
  end)

  describe("rejected commands write nothing", function()
    local cases = {
      { 2, { "start", "greet", "{bad json" }, "JSON" },
      { 2, { "start", "greet", "--disposition", "sometimes" }, "sometimes" },
      { 2, { "start", "greet", "--max-attempts", "x" }, "--max-attempts" },
      { 2, { "start" }, "KIND" },
      { 2, { "start", "greet", "{}", "extra" }, '"extra"' },
      { 2, { "signal", "p1", "go", "[1," }, "JSON" },
      { 1, { "signal", "nope", "go" }, 'unknown process "nope"' },
      { 1, { "cancel", "nope" }, 'unknown process "nope"' },
      { 1, { "show", "nope" }, 'unknown process "nope"' },
      { 1, { "events", "nope" }, 'unknown process "nope"' },
      { 1, { "await", "nope", "--timeout", "100" }, 'unknown process "nope"' },
      { 2, { "events", "p1", "--after", "-3" }, "--after" },
      { 2, { "await", "p1", "--timeout", "soon" }, "--timeout" },
      { 2, { "prune" }, "--older-than" },
      { 2, { "prune", "--older-than", "7 days" }, "7 days" },
      { 2, { "prune", "--older-than", "7d", "--status", "running" }, '"running"' },
      { 2, { "ps", "--status", "sleepy" }, '"sleepy"' },
      { 2, { "ps", "--limit" }, "--limit" },
      { 2, { "show" }, "ID" },
      { 2, { "cancel", "p1", "why", "more" }, '"more"' },
      { 2, { "worker" }, "--load" },
      { 2, { "worker", "--load", "/nonexistent/kinds.lua" }, "/nonexistent/kinds.lua" },
      { 2, { "worker", "--load", "x.lua", "--concurrency", "0" }, "--concurrency" },
      { 2, { "stats", "--json=yes" }, "--json" },
    }
    for _, c in ipairs(cases) do
      local want, args, mention = c[1], c[2], c[3]
      it("lash " .. table.concat(args, " ") .. " -> exit " .. want, function()
        local db = seeded()
        local before = change_seq(db)
        local code, out, err = on(db, table.unpack(args))
        assert.are.equal(want, code, err)
        assert.are.equal("", out)
        assert.matches(mention, err, 1, true)
        if want == 2 then assert.matches("usage: lash", err, 1, true) end
        assert.are.equal(before, change_seq(db))
        assert.are.equal(1, #json_of(db, "ps", "--json"))
      end)
    end
  end)

  describe("run", function()
    it("runs a script with lash, eng and arg, then drives until idle", function()
      local db = h.store_path()
      local script = h.tmpdir() .. "/s.lua"
      h.write_file(script, [[
        assert(lash and eng, "globals")
        eng:define("double", function(ctx, input) ctx:sleep(20) return input * 2 end)
        local id = eng:start("double", tonumber(arg[1]), { id = "d1" })
        print("started", id, arg[0] ~= nil, select("#", ...))
      ]])
      local code, out, err = on(db, "run", script, "21", "--not-an-option")
      assert.are.equal(0, code, err)
      assert.are.equal("started\td1\ttrue\t2\n", out)
      local o = json_of(db, "await", "d1", "--timeout", "1000", "--json")
      assert.are.same({ status = "completed", value = 42 }, o)
    end)

    it("a failing script exits 1 with a traceback; a missing file exits 1", function()
      local script = h.tmpdir() .. "/bad.lua"
      h.write_file(script, "local function f() error('script broke') end\nf()\n")
      local code, _, err = on(h.store_path(), "run", script)
      assert.are.equal(1, code)
      assert.matches("script broke", err, 1, true)
      assert.matches("stack traceback", err, 1, true)
      code, _, err = on(h.store_path(), "run", "/nonexistent.lua")
      assert.are.equal(1, code)
      assert.matches("nonexistent.lua", err, 1, true)
    end)

    it("a script returning an integer exits with it", function()
      local script = h.tmpdir() .. "/rc.lua"
      h.write_file(script, "return 3\n")
      assert.are.equal(3, (on(h.store_path(), "run", script)))
    end)
  end)

  describe("with a worker", function()
    it("await prints the outcome; events lists the log (text and --json)", function()
      local db = h.store_path()
      start_worker(db)
      on(db, "start", "greet", '{"name":"ada"}', "--id", "g1")
      local code, out, err = on(db, "await", "g1", "--timeout", "5000")
      assert.are.equal(0, code, err)
      assert.are.equal('completed {"hello":"ada"}\n', out)
      local o = json_of(db, "await", "g1", "--json")
      assert.are.same({ status = "completed", value = { hello = "ada" } }, o)
      local evs = json_of(db, "events", "g1", "--json")
      local types = {}
      for i, ev in ipairs(evs) do
        types[i] = ev.type
        assert.are.equal(i, ev.seq)
      end
      assert.are.same({ "process.started", "progress", "process.completed" }, types)
      assert.are.same({ pct = 50 }, evs[2].payload)
      local after = json_of(db, "events", "g1", "--after", "2", "--json")
      assert.are.equal(1, #after)
      code, out = on(db, "events", "g1")
      assert.are.equal(0, code)
      assert.matches("SEQ%s+TYPE%s+AT%s+PAYLOAD%s+KEY\n", out)
      assert.matches("2%s+progress%s+[%d%- :%.]+%s+{\"pct\":50}", out)
    end)

    it("await exits 1 on failed, cancelled and timed-out processes", function()
      local db = h.store_path()
      start_worker(db)
      on(db, "start", "boom", "--id", "b1")
      local code, out, err = on(db, "await", "b1", "--timeout", "5000")
      assert.are.equal(1, code)
      assert.matches("^failed: .*kaboom", out)
      assert.matches("stack traceback", err, 1, true)
      local o = json_of(db, "show", "b1", "--json").outcome
      assert.are.equal("failed", o.status)
      on(db, "start", "gate", "--id", "c1")
      code = on(db, "cancel", "c1", "not needed")
      assert.are.equal(0, code)
      code, out = on(db, "await", "c1", "--timeout", "5000", "--json")
      assert.are.equal(1, code)
      assert.are.equal("cancelled", cjson.decode(out).status)
      on(db, "start", "nobody-runs-this", "--id", "n1")
      local _
      code, _, err = on(db, "await", "n1", "--timeout", "100")
      assert.are.equal(1, code)
      assert.matches("timed out", err, 1, true)
    end)

    it("signal delivers a payload to a waiting body", function()
      local db = h.store_path()
      start_worker(db)
      on(db, "start", "gate", "--id", "s1")
      local code, out, err = on(db, "signal", "s1", "go", '{"x":1,"list":[1,2]}', "--json")
      assert.are.equal(0, code, err)
      local r = cjson.decode(out)
      assert.are.equal("signal.go", r.type)
      assert.are.equal("number", type(r.seq))
      local o = json_of(db, "await", "s1", "--timeout", "5000", "--json")
      assert.are.same({ got = { x = 1, list = { 1, 2 } } }, o.value)
    end)

    it("events --follow prints events as they land, until the end", function()
      local db = h.store_path()
      start_worker(db)
      on(db, "start", "nap", '{"ms":200}', "--id", "f1")
      local code, out, err = on(db, "events", "f1", "--follow", "--json")
      assert.are.equal(0, code, err)
      local types = {}
      for line in out:gmatch("[^\n]+") do types[#types + 1] = cjson.decode(line).type end
      assert.are.equal("process.completed", types[#types])
      assert.is_truthy(#types >= 3)
    end)

    it("prune removes old terminal rows; await then reports them gone", function()
      local db = h.store_path()
      start_worker(db)
      on(db, "start", "greet", '{"name":"x"}', "--id", "old")
      assert.are.equal(0, (on(db, "await", "old", "--timeout", "5000")))
      local rep = json_of(db, "prune", "--older-than", "0s", "--json")
      assert.are.same({ processes = 1, events = 3 }, rep)
      local code, out = on(db, "await", "old")
      assert.are.equal(1, code)
      assert.matches("no longer retained", out, 1, true)
    end)

    it("payload bytes that are not UTF-8 still give valid JSON", function()
      local db = h.store_path()
      local script = h.tmpdir() .. "/bytes.lua"
      h.write_file(script, [[eng:start("raw", {blob = "\xff\xfeok\xc3"}, {id = "r1"})]])
      assert.are.equal(0, (on(db, "run", script)))
      local r = json_of(db, "show", "r1", "--json")
      assert.are.equal("\u{FFFD}\u{FFFD}ok\u{FFFD}", r.input.blob)
      local code, out = on(db, "show", "r1")
      assert.are.equal(0, code)
      assert.matches("r1", out, 1, true)
    end)
  end)

  describe("worker shutdown", function()
    it("SIGTERM: the in-flight body finishes, the worker exits 0", function()
      local db = h.store_path()
      local w = start_worker(db)
      on(db, "start", "nap", '{"ms":300}', "--id", "w1")
      assert.is_truthy(h.poll(function()
        local r = json_of(db, "show", "w1", "--json")
        return r.status == "waiting"
      end, 5000), "the body never started")
      w.kill("TERM")
      assert.are.equal(0, w.wait(5000))
      local r = json_of(db, "show", "w1", "--json")
      assert.are.equal("completed", r.status)
      assert.are.equal(true, r.outcome.value.slept)
      assert.matches("SIGTERM", h.read_file(w.log), 1, true)
      assert.are.equal(0, (on(db, "check")))
    end)

    it("after the grace period leases are released: another worker runs the row at once",
      function()
        local db = h.store_path()
        local w = start_worker(db, "--grace", "100ms")
        on(db, "start", "slow_first", "--id", "w2")
        assert.is_truthy(h.poll(function()
          return json_of(db, "show", "w2", "--json").status == "waiting"
        end, 5000), "the body never started")
        local t0 = h.mono_ms()
        w.kill("INT")
        assert.are.equal(0, w.wait(5000))
        assert.is_truthy(h.mono_ms() - t0 < 2000, "the worker took too long to stop")
        -- With its lease released (not left to lapse: the TTL is 30 s), a
        -- second worker claims the row at once.
        start_worker(db)
        local o = json_of(db, "await", "w2", "--timeout", "5000", "--json")
        assert.are.equal("completed", o.status)
        assert.are.equal(2, o.value.attempt)
      end)
  end)
end)
