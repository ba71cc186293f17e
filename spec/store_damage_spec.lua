-- spec/store_damage_spec.lua - the store under hostile use, with the real
-- `lash` executable and real signals (issue 8, Why 4, 5, 6): reader slots of
-- kill -9'd openers are reclaimed, 150 concurrent awaits fit, a worker at a
-- full map says so and exits non-zero, and damage (a truncated, empty or
-- byte-flipped data file) is reported by `lash check` (exit 1), never a
-- crash; --salvage copies the readable rows.
local h = require "spec.helpers"

local BIN = os.getenv("LASH_BIN") or (h.root .. "/build/bindings/lash")
local DATA = "data" .. ".mdb" -- the backend's file (named here, not in lua/)

-- Runs a shell command line; returns its exit code, stdout, stderr.
local function sh(cmd)
  local dir = h.tmpdir()
  local _, how, code = os.execute(string.format("%s >%s/out 2>%s/err </dev/null", cmd,
    h.q(dir), h.q(dir)))
  if how == "signal" then code = 128 + code end
  return code, h.read_file(dir .. "/out") or "", h.read_file(dir .. "/err") or ""
end

-- `lash ARGS...` (each shell-quoted).
local function lash(...)
  local parts = { h.q(BIN) }
  for _, a in ipairs({ ... }) do parts[#parts + 1] = h.q(a) end
  return sh(table.concat(parts, " "))
end

local function file_size(path)
  local f = assert(io.open(path, "rb"))
  local n = f:seek("end")
  f:close()
  return n
end

-- A store of n rows of kind "k", each with one progress event whose
-- payload names the row; closed.
local function make_store(n)
  local db = h.store_path()
  local eng = h.open(db)
  eng:batch(function(e)
    for i = 1, n do
      local id = assert(e:start("k", nil, { id = string.format("row-%04d", i) }))
      assert(e:append(id, "progress", { marker = string.format("PAYLOAD-%04d", i) }))
    end
  end)
  eng:close()
  return db
end

local function write_kind(dir, body)
  local path = dir .. "/k.lua"
  h.write_file(path, "return { k = function(ctx, input) " .. body .. " end }\n")
  return path
end

-- Flips the byte at offset `at` of `path` (xor mask).
local function flip(path, at, mask)
  local f = assert(io.open(path, "r+b"))
  f:seek("set", at)
  local c = f:read(1):byte()
  f:seek("set", at)
  f:write(string.char(c ~ mask))
  f:close()
end

describe("store hygiene", function()
  after_each(h.cleanup)

  it("reclaims the reader slots of 130 kill -9'd openers: stats and a new worker work", function()
    if h.lmdb_only(pending) then return end -- LMDB files, readers and map
    local db = make_store(2000)
    local dir = h.tmpdir()
    -- Each opener lists the store in a loop: it spends its time in a read.
    local script = dir .. "/reader.lua"
    h.write_file(script, "while true do eng:list({ limit = 0 }) end\n")
    local killed = 0
    for _ = 1, 5 do
      local pids = {}
      for _ = 1, 26 do
        local p = assert(io.popen(string.format("%s --db %s --max-readers 126 run %s " ..
          ">/dev/null 2>&1 </dev/null & echo $!", h.q(BIN), h.q(db), h.q(script))))
        pids[#pids + 1] = tonumber(p:read("l"))
        p:close()
      end
      h.sleep_ms(600)
      for _, pid in ipairs(pids) do
        h.kill(pid, "KILL")
        killed = killed + 1
      end
      for _, pid in ipairs(pids) do h.wait_exit(pid, 5000) end
    end
    assert.are.equal(130, killed)
    local code, out, err = lash("--db", db, "--max-readers", "126", "stats", "--json")
    assert.are.equal(0, code, err)
    assert.truthy(out:find('"pending":2000', 1, true), out)
    -- A new worker runs a new row to its end.
    local k = write_kind(dir, "return 'done'")
    local id
    code, id, err = lash("--db", db, "start", "k", "--id", "fresh")
    assert.are.equal(0, code, err)
    local wpid = tonumber(io.popen(string.format("%s --db %s --max-readers 126 worker --load %s " ..
      ">%s/w.log 2>&1 </dev/null & echo $!", h.q(BIN), h.q(db), h.q(k), h.q(dir))):read("l"))
    code, out, err = lash("--db", db, "--max-readers", "126", "await", "fresh", "--timeout", "20s")
    h.kill(wpid, "TERM")
    h.wait_exit(wpid, 10000)
    assert.are.equal(0, code, err .. (h.read_file(dir .. "/w.log") or ""))
    assert.truthy(out:find("done", 1, true), out)
    assert.truthy(id)
  end)

  it("150 concurrent `lash await`s on one store all succeed", function()
    if h.lmdb_only(pending) then return end -- LMDB files, readers and map
    local db = h.store_path()
    local dir = h.tmpdir()
    local code, _, err = lash("--db", db, "start", "k", "--id", "one")
    assert.are.equal(0, code, err)
    local n = 150
    local pids = {}
    for i = 1, n do
      local p = assert(io.popen(string.format("(%s --db %s await one --timeout 60s " ..
        ">%s/a%d.out 2>&1 </dev/null; echo $? >%s/a%d.rc) >/dev/null 2>&1 & echo $!",
        h.q(BIN), h.q(db), h.q(dir), i, h.q(dir), i)))
      pids[#pids + 1] = tonumber(p:read("l"))
      p:close()
    end
    h.sleep_ms(3000) -- let them open the store and park
    -- Complete the row from another process: a worker runs it.
    local k = write_kind(dir, "return 42")
    local wpid = tonumber(io.popen(string.format("%s --db %s worker --load %s >%s/w.log 2>&1 " ..
      "</dev/null & echo $!", h.q(BIN), h.q(db), h.q(k), h.q(dir))):read("l"))
    local done = h.poll(function()
      for i = 1, n do
        if not h.read_file(dir .. "/a" .. i .. ".rc") then return false end
      end
      return true
    end, 90000, 100)
    h.kill(wpid, "TERM")
    h.wait_exit(wpid, 10000)
    assert.truthy(done, "every await ended")
    local failed = {}
    for i = 1, n do
      local rc = (h.read_file(dir .. "/a" .. i .. ".rc") or ""):match("%d+")
      if rc ~= "0" then
        failed[#failed + 1] = i .. ": " .. tostring(rc) .. " " ..
          (h.read_file(dir .. "/a" .. i .. ".out") or "")
      end
    end
    assert.are.same({}, failed)
    assert.are.equal(n, #pids)
  end)

  it("a map that fills grows when there is no ceiling", function()
    if h.lmdb_only(pending) then return end -- LMDB files, readers and map
    local db = h.store_path()
    local eng = h.open(db, { map_bytes = 256 * 1024 })
    local blob = string.rep("x", 2000)
    for i = 1, 2000 do
      assert(eng:start("k", blob, { id = "g" .. i }))
    end
    local s = eng:stats()
    assert.are.equal(2000, s.pending)
    assert.is_true(s.bytes_used > 4 * 1024 * 1024)
    assert.are.same({}, eng:check())
  end)

  it("an engine draining rows past a small map grows it instead of stopping", function()
    if h.lmdb_only(pending) then return end -- LMDB files, readers and map
    local eng = h.open(h.store_path(), { map_bytes = 256 * 1024 })
    eng:define("k", function() return string.rep("o", 3000) end)
    eng:batch(function(e)
      for i = 1, 1000 do assert(e:start("k", nil, { id = "d" .. i })) end
    end)
    assert(eng:run({ until_idle = true }))
    local s = eng:stats()
    assert.are.equal(1000, s.completed)
    assert.is_true(s.bytes_used > 3 * 1024 * 1024)
    assert.is_true(s.longest_write_us > 0)
  end)

  it("a worker at the --map-size ceiling logs EFULL with the remedy and exits 1", function()
    if h.lmdb_only(pending) then return end -- LMDB files, readers and map
    local db = h.store_path()
    local dir = h.tmpdir()
    local eng = h.open(db, { max_bytes = 1024 * 1024 })
    local blob = string.rep("y", 4000)
    local i, code = 0, nil -- luacheck: ignore 311
    repeat
      i = i + 1
      local _, _, c = eng:start("k", blob, { id = string.format("f%05d", i) })
      code = c
    until code ~= nil or i > 100000
    assert.are.equal("EFULL", code)
    eng:close()
    local k = write_kind(dir, "return string.rep('z', 100000)")
    local rc, _, err = sh(string.format("timeout -k 5 60 %s --db %s --map-size 1m worker --load %s",
      h.q(BIN), h.q(db), h.q(k)))
    assert.are.equal(1, rc, err)
    assert.truthy(err:find(db, 1, true), err)
    assert.truthy(err:find("EFULL", 1, true), err)
    assert.truthy(err:find("--map-size", 1, true), err)
  end)

  it("rejects bad store flags as usage errors", function()
    local db = h.store_path()
    local code, _, err = lash("--db", db, "--map-size", "lots", "stats")
    assert.are.equal(2, code)
    assert.truthy(err:find("--map-size", 1, true), err)
    code, _, err = lash("--db", db, "stats", "--max-readers", "0")
    assert.are.equal(2, code)
    assert.truthy(err:find("--max-readers", 1, true), err)
    code, _, err = lash("--db", db, "stats", "--lease-ttl", "soon")
    assert.are.equal(2, code)
    assert.truthy(err:find("--lease-ttl", 1, true), err)
  end)
end)

describe("damage", function()
  after_each(h.cleanup)

  it("truncate -s 50% data.mdb: lash check exits 1 naming the damage (no SIGBUS)", function()
    if h.lmdb_only(pending) then return end -- LMDB files, readers and map
    local db = make_store(400)
    local path = db .. "/" .. DATA -- truncate -s 50%
    assert(os.execute(string.format("truncate -s %d %s", file_size(path) // 2, h.q(path))))
    local code, out, err = lash("--db", db, "check")
    assert.are.equal(1, code, out .. err)
    assert.truthy((out .. err):find("truncated", 1, true), out .. err)
    assert.truthy((out .. err):find("meta pages say", 1, true), out .. err)
    local scode, _, serr = lash("--db", db, "stats")
    assert.are.equal(1, scode, serr)
    assert.truthy(serr:find("damaged", 1, true), serr)
  end)

  it("a 0-byte data file is not ok", function()
    if h.lmdb_only(pending) then return end -- LMDB files, readers and map
    local db = make_store(3)
    assert(io.open(db .. "/" .. DATA, "wb")):close()
    local code, out, err = lash("--db", db, "check")
    assert.are.equal(1, code, out .. err)
    assert.falsy(out:find("ok: no problems", 1, true))
    assert.truthy((out .. err):find("empty", 1, true), out .. err)
  end)

  it("a flipped byte in an event payload is reported by check and by reading it", function()
    if h.lmdb_only(pending) then return end -- LMDB files, readers and map
    local db = make_store(5)
    local path = db .. "/" .. DATA
    local data = h.read_file(path)
    local at = data:find("PAYLOAD-0003", 1, true)
    assert.truthy(at)
    flip(path, at - 1 + 11, 0x01) -- PAYLOAD-0003 -> PAYLOAD-0002
    local code, out, err = lash("--db", db, "check")
    assert.are.equal(1, code, out .. err)
    assert.truthy(out:find("row-0003: event 1 is damaged", 1, true), out)
    code, out, err = lash("--db", db, "events", "row-0003")
    assert.are.equal(1, code, out .. err)
    assert.truthy(err:find("event 1 of process row-0003 is damaged", 1, true), err)
    code, out = lash("--db", db, "events", "row-0002")
    assert.are.equal(0, code)
    assert.truthy(out:find("PAYLOAD-0002", 1, true), out)
    -- --salvage copies the four sound rows into a new store.
    local dest = h.tmpdir() .. "/saved"
    code, out, err = lash("--db", db, "check", "--salvage", dest)
    assert.are.equal(1, code, out .. err) -- a row was skipped
    assert.truthy(out:find("salvage: 4 rows copied to " .. dest .. ", 1 skipped", 1, true), out)
    assert.truthy(out:find("skipped process row-0003", 1, true), out)
    code, out = lash("--db", dest, "check")
    assert.are.equal(0, code, out)
    code, out = lash("--db", dest, "stats", "--json")
    assert.are.equal(0, code)
    assert.truthy(out:find('"pending":4', 1, true), out)
  end)

  it("random byte inversions (50 runs) never crash lash check: it exits 0 or 1", function()
    if h.lmdb_only(pending) then return end -- LMDB files, readers and map
    local db = make_store(300)
    local src = h.read_file(db .. "/" .. DATA)
    local size = #src
    local seed = 4242
    local codes, bad = { [0] = 0, [1] = 0 }, {}
    for run = 1, 50 do
      local d = h.tmpdir()
      local bytes = { src:byte(1, -1) }
      for _ = 1, 8 do
        seed = (seed * 1103515245 + 12345) % 2147483648
        local at = seed % size + 1
        bytes[at] = bytes[at] ~ 0xff
      end
      local parts = {}
      for i = 1, #bytes, 4096 do
        parts[#parts + 1] = string.char(table.unpack(bytes, i, math.min(i + 4095, #bytes)))
      end
      h.write_file(d .. "/" .. DATA, table.concat(parts))
      local code, out, err = lash("--db", d, "check")
      if codes[code] then
        codes[code] = codes[code] + 1
      else
        bad[#bad + 1] = "run " .. run .. ": exit " .. code .. " " .. out .. err
      end
    end
    assert.are.same({}, bad)
    assert.is_true(codes[1] > 0, "damage found in some runs")
  end)
end)
