-- spec/repl_spec.lua - the REPL of the `lash` executable in a real terminal
-- (tmux): expressions, multi-line input, errors, engine calls, bodies that
-- progress while the prompt waits, Ctrl-C on a busy chunk, Ctrl-D.
local h = require "spec.helpers"

local BIN = os.getenv("LASH_BIN") or (h.root .. "/build/bindings/lash")
local have_tmux = os.execute("command -v tmux >/dev/null 2>&1")

local n = 0
local sessions = {} -- every session started, killed in after_each

-- A REPL in a detached tmux session; returns an object with send(keys...),
-- type(line), screen() and wait_for(pattern) -> screen or false.
local function repl()
  n = n + 1
  local dir = h.tmpdir()
  local name = string.format("lash-spec-%d-%d", math.random(1, 1e9), n)
  local cmd = string.format("env LASH_HISTORY=%s %s --db %s", h.q(dir .. "/history"),
    h.q(BIN), h.q(dir .. "/db"))
  assert(os.execute(string.format("tmux new-session -d -s %s -x 200 -y 50 %s", name,
    h.q(cmd))), "tmux new-session failed")
  sessions[#sessions + 1] = name
  local r = { name = name, dir = dir }
  function r.send(...)
    local keys = {}
    for i, k in ipairs({ ... }) do keys[i] = h.q(k) end
    os.execute("tmux send-keys -t " .. name .. " " .. table.concat(keys, " "))
  end
  function r.type(line)
    os.execute("tmux send-keys -t " .. name .. " -l " .. h.q(line))
    r.send("Enter")
  end
  function r.screen()
    local p = io.popen("tmux capture-pane -p -N -t " .. name .. " 2>/dev/null")
    local s = p:read("a")
    p:close()
    return s
  end
  function r.alive()
    return os.execute("tmux has-session -t " .. name .. " 2>/dev/null") == true
  end
  -- Waits until the screen matches the Lua pattern.
  function r.wait_for(pat, ms)
    return h.poll(function()
      local s = r.screen()
      return s:find(pat) and s or false
    end, ms or 3000, 20)
  end
  function r.close()
    os.execute("tmux kill-session -t " .. name .. " 2>/dev/null")
  end
  assert(r.wait_for("\n> \n"), "no prompt")
  return r
end

describe("lash repl", function()
  local r
  before_each(function()
    if not have_tmux then pending("tmux is not installed") end
  end)
  after_each(function()
    for _, name in ipairs(sessions) do
      os.execute("tmux kill-session -t " .. name .. " 2>/dev/null")
    end
    sessions = {}
    r = nil
    h.cleanup()
  end)

  it("prints values, continues incomplete input, survives errors", function()
    r = repl()
    r.type("1 + 2")
    assert.is_truthy(r.wait_for("> 1 %+ 2\n3\n> "))
    r.type("t = {a = 1,")
    assert.is_truthy(r.wait_for("\n>> \n"))
    r.type("b = {2, 3}}")
    r.type("t")
    assert.is_truthy(r.wait_for("{a = 1, b = {2, 3}}\n> "))
    r.type("error('boom')")
    local s = r.wait_for("stack traceback")
    assert.is_truthy(s)
    assert.matches("stdin:1: boom", s, 1, true)
    r.type("'still here'")
    assert.is_truthy(r.wait_for("\nstill here\n> "))
  end)

  it("has lash and eng: start a process and read its status", function()
    r = repl()
    r.type('id = eng:start("later", {n = 1}, {id = "x1"})')
    r.type("eng:get(id).status")
    assert.is_truthy(r.wait_for("\npending\n> "))
    r.type("eng:get(id)")
    local s = r.wait_for("kind%s+later")
    assert.is_truthy(s)
    assert.matches("id%s+x1\n", s)
    r.type("lash.version")
    assert.is_truthy(r.wait_for("\n%d+%.%d+%.%d+\n> "))
  end)

  it("runs bodies while the prompt waits for input", function()
    r = repl()
    r.type('eng:define("nap", function(ctx) ctx:sleep(200) return "rested" end)')
    r.type('id = eng:start("nap")')
    assert.is_truthy(r.wait_for('id = eng:start%("nap"%)\n> '))
    h.sleep_ms(600) -- no typing: the engine runs between prompts
    r.type("eng:get(id).status")
    assert.is_truthy(r.wait_for("\ncompleted\n> "))
    r.type("eng:events(id)")
    local s = r.wait_for("process.completed")
    assert.is_truthy(s)
    assert.matches("SEQ%s+TYPE%s+AT%s+PAYLOAD", s)
  end)

  it("Ctrl-C interrupts a busy chunk and the prompt comes back", function()
    r = repl()
    r.type("while true do end")
    h.sleep_ms(200)
    r.send("C-c")
    local screen = r.wait_for("interrupted\n> ")
    assert.is_truthy(screen)
    assert.is_nil(screen:find("stack traceback", 1, true))
    r.type("40 + 2")
    assert.is_truthy(r.wait_for("\n42\n> "))
  end)

  it("Ctrl-C interrupts a chunk waiting in the loop (eng:await), not the REPL", function()
    r = repl()
    r.type('eng:define("forever", function(ctx) return ctx:await_signal("never") end)')
    r.type('id = eng:start("forever")')
    r.type("eng:await(id)")
    h.sleep_ms(300)
    r.send("C-c")
    -- only the word: no internal position (lash/init.lua:N:) and no traceback
    local screen = r.wait_for("interrupted\n> ")
    assert.is_truthy(screen)
    assert.is_nil(screen:find("init.lua", 1, true))
    assert.is_nil(screen:find("stack traceback", 1, true))
    r.type("eng:get(id).status")
    assert.is_truthy(r.wait_for("waiting"))
  end)

  it("help lists the calls, help(fn) and help(\"name\") show one", function()
    r = repl()
    r.type("help")
    local screen = r.wait_for("\nctx: [^\n]*await_signal")
    assert.is_truthy(screen)
    assert.matches("\neng: [^\n]*start", screen)
    r.type("help(eng.signal)")
    assert.is_truthy(r.wait_for("\neng:signal%(id, name, payload%) %-> seq"))
    r.type('help("await_event")')
    assert.is_truthy(r.wait_for("\nctx:await_event%(%[id,%] type, after"))
    r.type("help(print)")
    assert.is_truthy(r.wait_for("no help for this function"))
  end)

  it("prints a background message above the prompt and redraws what was typed", function()
    r = repl()
    r.type('eng:on_event(function(ev) if ev.type == "x" then error("bg trouble") end end)')
    r.type('eng:define("k", function(ctx) ctx:sleep(300) ctx:emit("x") end)')
    r.type('id = eng:start("k")')
    assert.is_truthy(r.wait_for('id = eng:start%("k"%)\n> '))
    os.execute("tmux send-keys -t " .. r.name .. " -l 'half typed'")
    local screen = r.wait_for("handler: stdin:1: bg trouble.-\n> half typed", 5000)
    assert.is_truthy(screen, r.screen())
    -- the message starts a line of its own: not glued to the prompt
    assert.is_nil(screen:find("> lash: error", 1, true))
    assert.is_nil(screen:find("> half typedlash", 1, true))
    r.send("C-u")
    r.type("1 + 1")
    assert.is_truthy(r.wait_for("\n2\n> "))
  end)

  it("Ctrl-D exits and the history is saved", function()
    r = repl()
    r.type("x = 7")
    r.send("C-d")
    assert.is_truthy(h.poll(function() return not r.alive() end, 3000), "still running")
    assert.matches("x", h.read_file(r.dir .. "/history") or "", 1, true)
  end)

  it("completes eng: methods and globals with Tab", function()
    r = repl()
    os.execute("tmux send-keys -t " .. r.name .. " -l 'eng:awa'")
    r.send("Tab")
    assert.is_truthy(r.wait_for("> eng:await"))
    r.send("C-u")
    os.execute("tmux send-keys -t " .. r.name .. " -l 'collectg'")
    r.send("Tab")
    assert.is_truthy(r.wait_for("> collectgarbage"))
  end)
end)
