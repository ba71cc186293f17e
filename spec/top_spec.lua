-- spec/top_spec.lua - `lash top` (issue 14.3) in a real terminal: tmux runs
-- it on a private server; capture-pane reads the screen while a real
-- `lash worker` completes rows (the counts move), `q` quits, and the
-- terminal is put back (canonical mode and echo on, the main screen shown).
local h = require "spec.helpers"

local BIN = os.getenv("LASH_BIN") or (h.root .. "/build/bindings/lash")

local sock = "lash-top-spec-" .. tostring(os.time()) .. "-" .. tostring(math.random(1e6))

local function tmux(args)
  local p = assert(io.popen("tmux -L " .. sock .. " " .. args .. " 2>&1"))
  local out = p:read("a")
  p:close()
  return out
end

local function screen() return tmux("capture-pane -p -t top") end

-- The number after `label` on the screen (e.g. "completed 12").
local function count(text, label)
  return tonumber(text:match(label .. " (%d+)"))
end

local worker_pid

describe("lash top", function()
  after_each(function()
    tmux("kill-server")
    if worker_pid and h.alive(worker_pid) then h.kill(worker_pid, "KILL") end
    worker_pid = nil
    h.cleanup()
  end)

  it("shows the counts moving as a worker completes rows; q quits and restores the terminal",
    function()
      local db = h.store_path()
      local dir = h.tmpdir()
      h.write_file(dir .. "/k.lua", [[
return {
  -- (a parked body holds no slot: a blocking call keeps the drain slow,
  -- one row at a time, so frames see it half way)
  tick = function() os.execute("sleep 0.05") return true end,
  boom = function() error("the top failure line") end,
}
]])
      for i = 1, 60 do
        local code, _, err = h.cli(db, "start", "tick", "null", "--id", string.format("t%03d", i))
        assert(code == 0, err)
      end
      assert.are.equal(0, (h.cli(db, "start", "boom", "null", "--id", "b1")))
      local cmd = string.format("%s --db %s top --interval 100; echo EXITED $?; " ..
        "stty -a > %s/stty; sleep 60", h.q(BIN), h.q(db), h.q(dir))
      tmux("new-session -d -s top -x 120 -y 50 " .. h.q(cmd))
      local first = h.poll(function()
        local s = screen()
        return s:find("lash top", 1, true) and s
      end, 10000)
      assert.truthy(first, "top did not draw: " .. screen())
      assert.are.equal(61, count(first, "pending"))
      assert.are.equal(0, count(first, "completed"))
      assert.matches("tick +60", first)
      -- a worker drains: the screen follows
      local p = assert(io.popen(string.format("%s --db %s worker --load %s --concurrency 2 " ..
        ">%s/wlog 2>&1 </dev/null & echo $!", h.q(BIN), h.q(db), h.q(dir .. "/k.lua"), h.q(dir))))
      worker_pid = tonumber(p:read("l"))
      p:close()
      local seen, mid = {}, nil
      local done = h.poll(function()
        local s = screen()
        local c = count(s, "completed")
        if c then seen[#seen + 1] = c end
        if c and c > 0 and c < 60 then mid = s end
        return c == 60 and s
      end, 60000, 50)
      assert.truthy(done, "the completed count never reached 60: " .. screen())
      assert.truthy(mid, "no frame caught the drain half way")
      assert.are.equal(0, count(done, "pending"))
      -- it rose step by step, never back
      for i = 2, #seen do assert.is_true(seen[i] >= seen[i - 1]) end
      -- the last minute's throughput and the failure got there too
      local later = h.poll(function()
        local s = screen()
        return s:find("last minute 61 rows", 1, true) and s:find("the top failure line", 1, true)
          and s
      end, 15000)
      assert.truthy(later, screen())
      assert.matches("LATEST FAILURES\n +%S+ ago +boom b1: [^\n]*the top failure line", later)
      tmux("send-keys -t top q")
      local after = h.poll(function()
        local s = screen()
        return s:find("EXITED", 1, true) and s
      end, 10000)
      assert.truthy(after, "q did not quit: " .. screen())
      assert.matches("EXITED 0", after)
      assert.is_nil(after:find("LATEST FAILURES", 1, true)) -- the main screen is back
      -- (the file exists before stty has written it: wait for its words)
      local stty = h.poll(function()
        local t = h.read_file(dir .. "/stty")
        return t and t:find("icanon", 1, true) and t
      end, 5000)
      assert.truthy(stty)
      assert.matches("[^-]icanon", stty)
      assert.matches("[^-]echo ", stty)
      assert.matches("[^-]isig", stty)
    end)

  it("needs a terminal", function()
    local db = h.store_path()
    assert.are.equal(0, (h.cli(db, "start", "tick", "null")))
    local code, _, err = h.cli(db, "top")
    assert.are.equal(1, code)
    assert.matches("needs a terminal", err)
  end)
end)
