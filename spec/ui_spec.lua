-- spec/ui_spec.lua - `lash ui` (issue 14.5) in headless Chromium: the
-- overview's numbers match `lash stats`, a workflow's timeline shows its two
-- attempts (the first one's worker died), its waits and its children, the
-- Cancel and Signal buttons change rows; the JSON endpoints, their errors
-- and the access token. Real processes: two workers (one killed by its own
-- body), the UI server, chromedriver + chromium (spec/browser.py).
--
-- LASH_UI_SHOTS=DIR keeps the screenshots there (docs/ui-timeline.png and
-- docs/ui-overview.png are made so).
local h = require "spec.helpers"
local cjson = require "cjson"

local BIN = os.getenv("LASH_BIN") or (h.root .. "/build/bindings/lash")
local PY = "/usr/bin/python3"
local have_browser = os.execute(
  "command -v chromium >/dev/null && command -v chromedriver >/dev/null")

local KINDS = [[
return {
  order = function(ctx, input)
    ctx:step("charge", function() return 42 end)
    if ctx.attempt == 1 then os.exit(3) end -- the first attempt's worker dies
    local a = ctx:start("ship", { n = 1 })
    local b = ctx:start("ship", { n = 2 })
    ctx:sleep(300)
    local s = ctx:await_signal("approve")
    ctx:await(a)
    ctx:await(b)
    ctx:emit("progress", { pct = 100 })
    return { ok = true, approved = s }
  end,
  ship = function(ctx, input)
    ctx:sleep(100)
    return { shipped = input.n }
  end,
  hold = function(ctx)
    return ctx:await_signal("go")
  end,
  quick = function(_, n) return n end,
}
]]

local pids = {}

local function bg(args, log)
  local parts = {}
  for i, a in ipairs(args) do parts[i] = h.q(a) end
  local cmd = string.format("%s %s >%s 2>&1 </dev/null & echo $!", h.q(BIN),
    table.concat(parts, " "), h.q(log))
  local p = assert(io.popen("sh -c " .. h.q(cmd), "r"))
  local pid = tonumber(p:read("l"))
  p:close()
  pids[#pids + 1] = pid
  return pid
end

local function json_of(cmd)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  p:close()
  local ok, v = pcall(cjson.decode, out)
  assert(ok, cmd .. " printed no JSON: " .. out)
  return v
end

local function http(method, url, body, ctype)
  local args = { PY, h.root .. "/spec/fetch.py", method, url }
  if body then args[#args + 1] = body end
  if ctype then args[#args + 1] = ctype end
  for i, a in ipairs(args) do args[i] = h.q(a) end
  return json_of(table.concat(args, " "))
end

local function browser(steps)
  local dir = h.tmpdir()
  h.write_file(dir .. "/steps.json", cjson.encode(steps))
  return json_of(string.format("%s %s <%s", PY, h.q(h.root .. "/spec/browser.py"),
    h.q(dir .. "/steps.json")))
end

local function cli_json(path, ...)
  local code, out, err = h.cli(path, ...)
  assert(code == 0, err)
  return cjson.decode(out)
end

-- Starts `lash ui` on path; returns its base URL (and the log).
local function ui(path, listen)
  local log = h.tmpdir() .. "/ui.log"
  bg({ "--db", path, "ui", "--listen", listen or "127.0.0.1:0" }, log)
  local url = h.poll(function()
    return (h.read_file(log) or ""):match("lash ui on (http://[^/%s]+)/")
  end, 30000)
  assert(url, "lash ui printed no address: " .. tostring(h.read_file(log)))
  return url, log
end

describe("lash ui", function()
  local path, dir, shots

  before_each(function()
    path = h.store_path()
    dir = h.tmpdir()
    shots = os.getenv("LASH_UI_SHOTS") or dir
    h.write_file(dir .. "/kinds.lua", KINDS)
  end)

  after_each(function()
    for _, pid in ipairs(pids) do
      if h.alive(pid) then
        h.kill(pid, "TERM")
        if not h.wait_exit(pid, 15000) then h.kill(pid, "KILL") end
      end
    end
    pids = {}
    h.cleanup()
  end)

  it("shows the overview, a timeline with a re-run attempt, waits and children; buttons act",
    function()
      if not have_browser then return pending("chromium and chromedriver are not installed") end
      local eng = h.open(path)
      assert(eng:start("order", { customer = "ann" }, { id = "order-1" }))
      assert(eng:start("hold", nil, { id = "hold-1" }))
      assert(eng:start("hold", nil, { id = "hold-2" }))
      for i = 1, 5 do assert(eng:start("quick", i, { id = "quick-" .. i })) end
      eng:close()
      -- the first worker dies inside order-1's first attempt
      local code = h.cli(path, "worker", "--load", dir .. "/kinds.lua")
      assert.equal(3, code)
      bg({ "--db", path, "worker", "--load", dir .. "/kinds.lua" }, dir .. "/worker.log")
      assert.is_truthy(h.poll(function()
        local r = cli_json(path, "show", "order-1", "--json")
        return r.wait == "signal:approve"
      end, 60000, 50), "order-1 never waited for its signal")
      assert.equal(0, (h.cli(path, "signal", "order-1", "approve", '{"by":"bob"}')))
      assert.is_truthy(h.poll(function()
        return cli_json(path, "show", "order-1", "--json").status == "completed"
      end, 60000, 50), "order-1 never completed")
      assert.is_truthy(h.poll(function()
        local s = cli_json(path, "stats", "--json")
        return s.completed == 8 and s.waiting == 2
      end, 60000, 50))
      local url = ui(path)
      local stats = cli_json(path, "stats", "--json")
      local STATS = { "pending", "running", "waiting", "completed", "failed", "cancelled",
        "abandoned", "total" }
      local steps = { { go = url .. "/" }, { wait_text = "[data-stat=completed]", text = "8" } }
      for _, s in ipairs(STATS) do steps[#steps + 1] = { text = "[data-stat=" .. s .. "]" } end
      local nstats = #steps
      steps[#steps + 1] = { text = "[data-kind=quick][data-kstat=completed]" }
      steps[#steps + 1] = { shot = shots .. "/ui-overview.png" }
      -- the timeline
      steps[#steps + 1] = { go = url .. "/#/p/order-1" }
      steps[#steps + 1] = { wait = "#timeline-svg" }
      steps[#steps + 1] = { count = "#timeline-svg rect.band[data-attempt]" }
      steps[#steps + 1] = { count = "#timeline-svg rect.gap" }
      steps[#steps + 1] = { count = "#children [data-child]" }
      steps[#steps + 1] = { count = "#timeline-svg g.ev" }
      steps[#steps + 1] = { attr = "#timeline-svg rect.gap", name = "data-gap" }
      steps[#steps + 1] = { shot = shots .. "/ui-timeline.png" }
      local itimeline = #steps
      -- a payload expands
      steps[#steps + 1] = { click = "#ev-1 .payload" }
      steps[#steps + 1] = { wait = "#ev-1 .payload pre" }
      -- the list, filtered
      steps[#steps + 1] = { go = url .. "/#/list?kind=hold" }
      steps[#steps + 1] = { wait = "table.list tbody tr[data-id]" }
      steps[#steps + 1] = { texts = "table.list tbody tr[data-id] td:first-child" }
      local ilist = #steps
      -- Cancel hold-1, signal hold-2
      steps[#steps + 1] = { go = url .. "/#/p/hold-1" }
      steps[#steps + 1] = { wait = "#btn-cancel" }
      steps[#steps + 1] = { type = "#cancel-reason", value = "from the browser" }
      steps[#steps + 1] = { click = "#btn-cancel" }
      steps[#steps + 1] = { wait_text = "h1 .badge", text = "cancelled", timeout = 30 }
      steps[#steps + 1] = { go = url .. "/#/p/hold-2" }
      steps[#steps + 1] = { wait = "#btn-signal" }
      steps[#steps + 1] = { type = "#sig-name", value = "go" }
      steps[#steps + 1] = { type = "#sig-payload", value = '{"from":"browser"}' }
      steps[#steps + 1] = { click = "#btn-signal" }
      steps[#steps + 1] = { wait_text = "h1 .badge", text = "completed", timeout = 30 }
      local res = browser(steps)
      assert.is_true(res.ok, cjson.encode(res))
      local r = res.results
      for i, s in ipairs(STATS) do
        assert.equal(tostring(math.tointeger(stats[s])), r[2 + i], "the page's " .. s)
      end
      assert.equal("5", r[nstats + 1])
      assert.equal(2, r[itimeline - 5], "two attempt bands")
      assert.is_true(r[itimeline - 4] >= 2, "the sleep and the signal wait as gaps")
      assert.equal(2, r[itimeline - 3], "two children")
      local _, evjson = h.cli(path, "events", "order-1", "--json")
      assert.equal(#cjson.decode(evjson),
        r[itimeline - 2], "one mark per event")
      assert.equal("sleep:300", r[itimeline - 1])
      assert.is_true(r[itimeline] > 10000, "a screenshot")
      assert.same({ "hold-1", "hold-2" }, r[ilist])
      local h1 = cli_json(path, "show", "hold-1", "--json")
      assert.equal("cancelled", h1.status)
      local h2 = cli_json(path, "show", "hold-2", "--json")
      assert.equal("completed", h2.status)
      assert.same({ from = "browser" }, h2.outcome.value)
    end)

  it("answers its JSON endpoints, with errors as JSON naming what was wrong", function()
    local eng = h.open(path)
    for i = 1, 7 do assert(eng:start("quick", i, { id = string.format("row-%d", i) })) end
    assert(eng:start("hold", nil, { id = "other-1" }))
    eng:close()
    local url = ui(path)
    local ov = http("GET", url .. "/api/overview")
    assert.equal(200, ov.status)
    local o = cjson.decode(ov.body)
    assert.equal(8, o.counts.pending)
    assert.equal(8, o.backlog)
    assert.equal("hold", o.kinds[1].kind)
    -- paging and the text filter
    local p1 = cjson.decode(http("GET", url .. "/api/list?limit=3&q=row").body)
    assert.same({ "row-1", "row-2", "row-3" }, { p1.rows[1].id, p1.rows[2].id, p1.rows[3].id })
    local p2 = cjson.decode(http("GET", url .. "/api/list?limit=3&q=row&after=" .. p1.next).body)
    assert.equal("row-4", p2.rows[1].id)
    local k = cjson.decode(http("GET", url .. "/api/list?kind=hold").body)
    assert.equal(1, #k.rows)
    -- errors
    local nope = http("GET", url .. "/api/process?id=nope")
    assert.equal(404, nope.status)
    assert.matches("nope", cjson.decode(nope.body).error)
    local bad = http("GET", url .. "/api/list?limit=0")
    assert.equal(400, bad.status)
    assert.matches("limit", cjson.decode(bad.body).error)
    local form = http("POST", url .. "/api/cancel", "id=row-1", "application/x-www-form-urlencoded")
    assert.equal(415, form.status)
    local get = http("GET", url .. "/api/cancel")
    assert.equal(405, get.status)
    local missing = http("POST", url .. "/api/cancel", '{"id":"missing"}', "application/json")
    assert.equal(404, missing.status)
    assert.equal("ENOENT", cjson.decode(missing.body).code)
    local c = http("POST", url .. "/api/cancel", '{"id":"row-1","reason":"r"}', "application/json")
    assert.equal(200, c.status, c.body)
    assert.is_true(h.poll(function()
      return cli_json(path, "show", "row-1", "--json").cancel_requested == true
    end, 10000) == true)
    assert.equal(404, http("GET", url .. "/nothing").status)
    assert.equal(200, http("GET", url .. "/assets/app.js").status)
    -- a page from another Host name (DNS rebinding) is refused
    local p = io.popen(string.format("%s -c %s", PY, h.q(
      "import urllib.request,sys\n" ..
      "r=urllib.request.Request(sys.argv[1],headers={'Host':'evil.example'})\n" ..
      "try:\n  urllib.request.urlopen(r)\n  print(200)\n" ..
      "except urllib.error.HTTPError as e:\n  print(e.code)")) .. " " ..
      h.q(url .. "/api/overview"))
    assert.equal("403", p:read("l"))
    p:close()
  end)

  it("needs the printed access token on a non-loopback address", function()
    h.open(path):close()
    local url, log = ui(path, "0.0.0.0:0")
    local token = (h.read_file(log) or ""):match("access token: (%x+)")
    assert.is_truthy(token, h.read_file(log))
    local port = url:match(":(%d+)$")
    local base = "http://127.0.0.1:" .. port
    local no = http("GET", base .. "/api/overview")
    assert.equal(401, no.status)
    assert.matches("token", cjson.decode(no.body).error)
    assert.equal(401, http("GET", base .. "/api/overview?token=wrong").status)
    assert.equal(200, http("GET", base .. "/api/overview?token=" .. token).status)
    local link = http("GET", base .. "/?token=" .. token)
    assert.equal(303, link.status)
    assert.matches("lash_token=" .. token, link.headers["set-cookie"])
  end)

  it("refuses a malformed --listen address", function()
    h.open(path):close()
    local code, _, err = h.cli(path, "ui", "--listen", "8080")
    assert.equal(2, code)
    assert.matches('%-%-listen "8080"', err)
    assert.matches("HOST:PORT", err)
    code, _, err = h.cli(path, "ui", "--listen", "127.0.0.1:70000")
    assert.equal(2, code)
    assert.matches('"127.0.0.1:70000"', err)
  end)
end)
