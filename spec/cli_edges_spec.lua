-- spec/cli_edges_spec.lua - the CLI's rough edges, each as a user met it:
-- durations with units (a bare number is milliseconds everywhere), a start
-- of an id that already ended, ps paging, and show's labels.
local h = require "spec.helpers"
local lash = require "lash"
local format = require "lash.format"

local BIN = os.getenv("LASH_BIN") or (h.root .. "/build/bindings/lash")

local on = h.cli

-- A store with rows in each terminal status, made through the Lua API.
local function store_with_ended_rows()
  local db = h.store_path()
  local eng = assert(lash.open(db))
  eng:define("ok", function() return "fine" end)
  eng:define("boom", function() error("it broke") end)
  eng:start("ok", nil, { id = "done-1" })
  eng:start("boom", nil, { id = "fail-1" })
  eng:start("never", nil, { id = "cancel-1" })
  eng:cancel("cancel-1", "not needed")
  eng:run { until_idle = true }
  eng:close()
  return db
end

describe("CLI durations", function()
  after_each(h.cleanup)

  it("read a bare number as milliseconds, and take units", function()
    assert.are.equal(500, format.duration("500"))
    assert.are.equal(500, format.duration("500ms"))
    assert.are.equal(10000, format.duration("10s"))
    assert.are.equal(7 * 86400000, format.duration("7d"))
    local v, why = format.duration("5 minutes")
    assert.is_nil(v)
    assert.truthy(why:find("500ms", 1, true))
  end)

  it("await --timeout takes a unit", function()
    local db = h.store_path()
    assert.are.equal(0, (on(db, "start", "nobody-runs-this", "--id", "p")))
    local code, _, err = on(db, "await", "p", "--timeout", "50ms")
    assert.are.equal(1, code)
    assert.truthy(err:find("timed out", 1, true), err)
    code, _, err = on(db, "await", "p", "--timeout", "soon")
    assert.are.equal(2, code)
    assert.truthy(err:find("--timeout", 1, true), err)
  end)

  it("worker --grace 300 waits 300 ms, not 300 s, for a body that will not finish", function()
    local db = h.store_path()
    local kinds = h.tmpdir() .. "/kinds.lua"
    h.write_file(kinds, [[return { spin = function(ctx) ctx:sleep(600000) end }]])
    assert.are.equal(0, (on(db, "start", "spin", "--id", "s1")))
    local dir = h.tmpdir()
    local log = dir .. "/worker.log"
    os.execute(string.format("sh -c %s >/dev/null 2>&1 &", h.q(string.format(
      "%s --db %s worker --load %s --grace 300 >%s 2>&1 </dev/null & echo $! >%s/pid",
      h.q(BIN), h.q(db), h.q(kinds), h.q(log), h.q(dir)))))
    local pid = h.poll(function() return tonumber(h.read_file(dir .. "/pid") or "") end, 3000)
    assert(pid, "the worker did not start")
    local eng = h.open(db)
    assert.is_true(h.wait_until(eng, function()
      local r = eng:get("s1")
      return r and r.status == "waiting"
    end, 10000))
    h.kill(pid, "TERM")
    -- 300 s would far outlast this bound; 300 ms ends well inside it.
    local exited = h.wait_exit(pid, 20000)
    if not exited then h.kill(pid, "KILL") end
    assert.is_true(exited, h.read_file(log))
  end)
end)

describe("lash start on an id that already ended", function()
  after_each(h.cleanup)

  it("says so and exits 1, for each terminal status", function()
    local db = store_with_ended_rows()
    for id, status in pairs({ ["done-1"] = "completed", ["fail-1"] = "failed",
      ["cancel-1"] = "cancelled" }) do
      local kind = ({ ["done-1"] = "ok", ["fail-1"] = "boom", ["cancel-1"] = "never" })[id]
      local code, out, err = on(db, "start", kind, "--id", id)
      assert.are.equal(1, code, out .. err)
      assert.are.equal("", out)
      assert.truthy(err:find(id .. ": already " .. status, 1, true), err)
    end
  end)

  it("--if-exists ok prints the id and exits 0; another value is a usage error", function()
    local db = store_with_ended_rows()
    local code, out = on(db, "start", "boom", "--id", "fail-1", "--if-exists", "ok")
    assert.are.equal(0, code)
    assert.are.equal("fail-1\n", out)
    local err
    code, out, err = on(db, "start", "boom", "--id", "fail-1", "--if-exists", "maybe")
    assert.are.equal("", out)
    assert.are.equal(2, code)
    assert.truthy(err:find('"maybe"', 1, true), err)
  end)

  it("a row it created that a worker ended before start returned was started: exit 0", function()
    local db = store_with_ended_rows()
    local w = h.cli_worker(db, { "--load",
      h.kinds_file([[return { boom = function() error("it broke") end }]]) }, 15000)
    local ok, why = pcall(function()
      for i = 1, 20 do
        local code, out, err = on(db, "start", "boom", "--id", "race-" .. i)
        assert.are.equal(0, code, err)
        assert.are.equal("race-" .. i .. "\n", out)
      end
      -- the worker ran them (some may have ended before their start returned)
      local eng = h.open(db)
      assert.is_true(h.wait_until(eng, function()
        for i = 1, 20 do
          local r = eng:get("race-" .. i)
          if not r or r.status ~= "failed" then return false end
        end
        return true
      end, 15000))
    end)
    h.kill(w.pid, "KILL")
    assert(ok, why)
  end)

  it("a live id started again still prints its id and exits 0", function()
    local db = h.store_path()
    assert.are.equal(0, (on(db, "start", "k", "--id", "live-1")))
    local code, out = on(db, "start", "k", "--id", "live-1")
    assert.are.equal(0, code)
    assert.are.equal("live-1\n", out)
  end)
end)

describe("lash ps paging", function()
  after_each(h.cleanup)

  it("shows --limit rows, says how many it left out, and --after gives the next page", function()
    local db = h.store_path()
    for i = 1, 5 do assert.are.equal(0, (on(db, "start", "k", "--id", "r" .. i))) end
    local code, out, err = on(db, "ps", "--limit", "2")
    assert.are.equal(0, code)
    assert.truthy(out:find("r1", 1, true) and out:find("r2", 1, true), out)
    assert.is_nil(out:find("r3", 1, true))
    assert.truthy(err:find("3 more not shown", 1, true), err)
    assert.truthy(err:find("--after r2", 1, true), err)
    code, out, err = on(db, "ps", "--limit", "2", "--after", "r2")
    assert.are.equal(0, code)
    assert.truthy(out:find("r3", 1, true) and out:find("r4", 1, true), out)
    assert.is_nil(out:find("r2", 1, true))
    assert.truthy(err:find("not shown", 1, true), err)
    code, out, err = on(db, "ps", "--limit", "2", "--after", "r4")
    assert.are.equal(0, code)
    assert.truthy(out:find("r5", 1, true), out)
    assert.are.equal("", err)
  end)

  it("--sort newest shows the latest created first and pages in that order", function()
    local db = h.store_path()
    -- ids whose order is not their creation order
    for _, id in ipairs({ "m", "z", "a", "q" }) do
      assert.are.equal(0, (on(db, "start", "k", "--id", id)))
      os.execute("sleep 0.01")
    end
    local code, out, err = on(db, "ps", "--sort", "newest", "--limit", "2")
    assert.are.equal(0, code, err)
    local q, a = out:find("\nq "), out:find("\na ")
    assert.truthy(q and a and q < a, out)
    assert.is_nil(out:find("\nz ", 1, true))
    assert.truthy(err:find("--after a --limit 2 --sort newest", 1, true), err)
    code, out = on(db, "ps", "--sort", "newest", "--limit", "2", "--after", "a")
    assert.are.equal(0, code)
    local z, m = out:find("\nz "), out:find("\nm ")
    assert.truthy(z and m and z < m, out)
    code, out = on(db, "ps", "--sort", "oldest", "--limit", "1")
    assert.are.equal(0, code)
    assert.truthy(out:find("\nm "), out)
    code, out, err = on(db, "ps", "--sort", "sideways")
    assert.are.equal("", out)
    assert.are.equal(2, code)
    assert.truthy(err:find("newest, oldest or id", 1, true), err)
  end)

  it("--json prints only the page, as an array", function()
    local db = h.store_path()
    for i = 1, 3 do assert.are.equal(0, (on(db, "start", "k", "--id", "j" .. i))) end
    local code, out = on(db, "ps", "--limit", "2", "--json")
    assert.are.equal(0, code)
    local ok, list = require("lash.core").json_decode(out)
    assert.is_true(ok)
    assert.are.equal(2, #list)
  end)
end)

describe("lash show", function()
  after_each(h.cleanup)

  it("keeps labels apart from values and calls last_seq what it is", function()
    local db = h.store_path()
    assert.are.equal(0, (on(db, "start", "k", "--id", "c1")))
    assert.are.equal(0, (on(db, "cancel", "c1", "too late")))
    local code, out = on(db, "show", "c1")
    assert.are.equal(0, code)
    assert.truthy(out:find("\ncancel reason  +too late\n"), out)
    assert.truthy(out:find("\nlast event +seq 2"), out)
    assert.is_nil(out:find("\nevents ", 1, true))
  end)
end)

-- A store its user may read but not write: run the CLI as "nobody" (the
-- tests run as root, for whom permission bits do not apply).
describe("lash --read-only", function()
  after_each(h.cleanup)

  local function as_nobody(db, ...)
    local dir = h.tmpdir()
    os.execute("chmod 0777 " .. h.q(dir))
    local parts = { "runuser", "-u", "nobody", "--", h.q(BIN), "--db", h.q(db) }
    for _, a in ipairs({ ... }) do parts[#parts + 1] = h.q(a) end
    local cmd = "cd / && " .. table.concat(parts, " ") .. " >" .. dir .. "/out 2>" .. dir ..
      "/err </dev/null"
    local _, _, code = os.execute(cmd)
    return code, h.read_file(dir .. "/out") or "", h.read_file(dir .. "/err") or ""
  end

  local function can_switch()
    if h.target or os.execute("id -u | grep -qx 0") ~= true then return false end
    return os.execute("runuser -u nobody -- true >/dev/null 2>&1") == true and
      os.execute("runuser -u nobody -- test -x " .. h.q(BIN)) == true
  end

  it("reads a store this user cannot write; a write is refused and changes nothing", function()
    if not can_switch() then
      pending("needs root, runuser, a nobody user that can run " .. BIN .. ", and LMDB")
      return
    end
    local db = h.store_path()
    assert.are.equal(0, (on(db, "start", "k", "--id", "ro-1")))
    os.execute("chmod -R go-w " .. h.q(db) .. " && chmod -R a+rX " .. h.q(db))
    -- without --read-only: the open fails
    local code, out, err = as_nobody(db, "ps")
    assert.are.equal(1, code, err)
    assert.are.equal("", out)
    code, out, err = as_nobody(db, "--read-only", "ps")
    assert.are.equal(0, code, err)
    assert.truthy(out:find("ro-1", 1, true), out)
    assert.truthy(err:find("not writable by this user", 1, true), err)
    code, out, err = as_nobody(db, "--read-only", "show", "ro-1", "--json")
    assert.are.equal(0, code, err)
    assert.truthy(out:find('"ro-1"', 1, true), out)
    code, out, err = as_nobody(db, "--read-only", "start", "k", "--id", "ro-2")
    assert.are.equal(1, code, out)
    assert.truthy(err:find("read-only", 1, true), err)
    code, out = on(db, "ps", "--json")
    assert.are.equal(0, code)
    assert.is_nil(out:find("ro-2", 1, true))
  end)
end)
