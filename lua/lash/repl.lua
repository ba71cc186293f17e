--- lash.repl: the interactive prompt of the `lash` executable.
---
--- It follows lua.c: each input is first tried as `return <input>`; a
--- syntax error ending in <eof> means the input is incomplete and the `>>`
--- prompt asks for more; errors print with a traceback and the prompt comes
--- back; SIGINT while a chunk runs sets a hook that interrupts it. Unlike
--- lua.c the prompt waits inside eng:run(): stdin is polled on the engine's
--- loop (lash.host), so process bodies keep running between prompts.
local lash = require "lash"
local format = require "lash.format"
local help = require "lash.help"

local M = {}

-- `help` shows the overview; help(fn) or help("name") one call.
local help_obj = setmetatable({}, {
  __call = function(_, what)
    io.stdout:write(help.text(what, { ["lash."] = lash, ["eng:"] = lash.Engine,
      ["ctx:"] = lash.Ctx }), "\n")
  end,
  __tostring = function() return help.text(nil) end,
  __name = "lash.help",
})


local KEYWORDS = { "and", "break", "do", "else", "elseif", "end", "false", "for", "function",
  "goto", "if", "in", "local", "nil", "not", "or", "repeat", "return", "then", "true",
  "until", "while" }

-- ----------------------------------------------------------- completion

local function add_keys(into, t, want_fn)
  if type(t) ~= "table" then return end
  for k, v in pairs(t) do
    if type(k) == "string" and k:match("^[%a_][%w_]*$") and
      (not want_fn or type(v) == "function") then
      into[k] = true
    end
  end
end

--- Candidates for `text`: "eng:st" -> methods, "lash.o" -> fields,
--- "pri" -> globals and keywords. Returns full replacements of text.
function M.complete(env, text)
  local names, prefix, sep, part = {}, nil, nil, text
  local p, s, rest = text:match("^(.-)([%.:])([%w_]*)$")
  if p and p ~= "" then
    prefix, sep, part = p, s, rest
    local obj = env
    for name in (prefix .. "."):gmatch("([^%.]*)%.") do
      if not name:match("^[%a_][%w_]*$") or type(obj) ~= "table" and type(obj) ~= "userdata" then
        return {}
      end
      local ok, v = pcall(function() return obj[name] end)
      if not ok or v == nil then return {} end
      obj = v
    end
    if type(obj) == "table" then add_keys(names, obj, sep == ":") end
    local mt = getmetatable(obj)
    if type(mt) == "table" and type(mt.__index) == "table" then
      add_keys(names, mt.__index, sep == ":")
    end
  else
    add_keys(names, env)
    add_keys(names, _G)
    for _, k in ipairs(KEYWORDS) do names[k] = true end
  end
  local out = {}
  for n in pairs(names) do
    if n:sub(1, #part) == part and n:sub(1, 1) ~= "_" or (part:sub(1, 1) == "_" and
      n:sub(1, #part) == part) then
      out[#out + 1] = (prefix and (prefix .. sep) or "") .. n
    end
  end
  table.sort(out)
  return out
end

-- ----------------------------------------------------------- evaluation

--- Compiles `src`: returns fn, or nil, "incomplete", or nil, message.
function M.compile(src, env)
  local fn, err1 = load("return " .. src, "=stdin", "t", env)
  if fn then return fn end
  local err2
  fn, err2 = load(src, "=stdin", "t", env)
  if fn then return fn end
  if err2:sub(-5) == "<eof>" or err1:sub(-5) == "<eof>" then return nil, "incomplete" end
  return nil, err2
end

-- The traceback of an error inside the chunk, without the REPL's frames;
-- an interrupt (Ctrl-C) is only that: no position, no traceback.
local function msghandler(e)
  if type(e) == "string" and e:match("interrupted!$") then return "interrupted" end
  local msg = e
  if type(e) ~= "string" then
    local mt = getmetatable(e)
    if mt and mt.__tostring then
      msg = tostring(e)
    else
      msg = "(error object is a " .. type(e) .. " value)"
    end
  end
  local tb = debug.traceback(msg, 2)
  tb = tb:gsub("\n[^\n]*%[C%]: in function 'xpcall'.*$", "")
  return tb
end

--- Evaluates one complete input; returns true, values (packed) or false,
--- traceback.
function M.eval(fn, host)
  if host then host.eval(true) end
  local res = table.pack(xpcall(fn, msghandler))
  if host then host.eval(false) end
  if not res[1] then return false, res[2] end
  return true, table.pack(table.unpack(res, 2, res.n))
end

--- The text the REPL prints for the values of an input.
function M.show(vals, eng)
  if vals.n == 0 then return nil end
  local now
  if eng then
    local ok, t = pcall(eng.now, eng)
    now = ok and t or nil
  end
  local parts, multi = {}, false
  for i = 1, vals.n do
    local s = rawequal(vals[i], help_obj) and tostring(help_obj) or format.repl(vals[i], now)
    if s:find("\n") then multi = true end
    parts[i] = s
  end
  return table.concat(parts, multi and "\n" or "\t")
end

-- ---------------------------------------------------------------- loops

local function history_path()
  local p = os.getenv("LASH_HISTORY")
  if p and p ~= "" then return p end
  local home = os.getenv("HOME")
  return home and (home .. "/.lash_history") or nil
end

-- Handles one input line: returns the pending buffer (incomplete input) or
-- nil; ok=false when the input failed.
local function feed(buf, line, env, eng, host, add_history)
  local src = buf and (buf .. "\n" .. line) or line
  if src:match("^%s*$") then return nil, true end
  local fn, err = M.compile((src:gsub("^=", "return ")), env)
  if not fn and err == "incomplete" then return src, true end
  if add_history then add_history(src) end
  if not fn then
    io.stderr:write(err, "\n")
    return nil, false
  end
  local ok, vals = M.eval(fn, host)
  if not ok then
    io.stderr:write(vals, "\n")
    return nil, false
  end
  local text = M.show(vals, eng)
  if text then io.stdout:write(text, "\n") end
  io.stdout:flush()
  return nil, true
end

local function make_env(eng)
  _G.lash, _G.eng, _G.help = lash, eng, help_obj
  return _G
end

-- Not a terminal: read lines with blocking reads, no prompt; exit 1 if
-- any input failed.
local function run_plain(eng)
  local env = make_env(eng)
  local buf, failed = nil, false
  for line in io.lines() do
    local ok
    buf, ok = feed(buf, line, env, eng, nil, nil)
    if not ok then failed = true end
    if pcall(eng.path, eng) then eng:run { nowait = true } end
  end
  if buf then
    io.stderr:write("lash: incomplete input at the end\n")
    failed = true
  end
  return failed and 1 or 0
end

local function run_tty(eng, host)
  local env = make_env(eng)
  local hist = history_path()
  if hist then host.history_load(hist) end
  host.completer(function(text) return M.complete(env, text) end)
  host.watch(eng)
  host.trap("INT")
  -- eng:close() typed at the prompt must first close the watch: its
  -- handles live on the engine's loop.
  local Engine, close = lash.Engine, lash.Engine.close
  Engine.close = function(self)
    if host.watching(self) then host.unwatch() end
    return close(self)
  end
  io.stdout:write(string.format("lash %s (%s) on %s; Ctrl-D exits\n", lash.version, _VERSION,
    eng:path()))
  local buf = nil
  local function add(src)
    host.history_add(src)
    if hist then host.history_save(hist) end
  end
  while true do
    host.prompt(buf and ">> " or "> ")
    local line
    while line == nil do
      -- The engine runs until a line (or a signal) stops it.
      if not pcall(eng.path, eng) then return 0 end
      local ok, err = pcall(eng.run, eng)
      if not ok then
        io.stderr:write(tostring(err), "\n")
      end
      line = host.line()
      if line == nil and host.signal() == "INT" then
        host.cancel_line()
        io.stdout:write("^C\n")
        buf = nil
        host.prompt("> ")
      end
    end
    if line == false then
      io.stdout:write("\n")
      break
    end
    buf = feed(buf, line, env, eng, host, add)
    if not pcall(eng.path, eng) then break end -- closed at the prompt
  end
  return 0
end

--- Runs the REPL on the open engine `eng`; returns the exit code.
---@param eng userdata
---@param opts? table host (the lash.host module; nil: plain reading)
function M.run(eng, opts)
  local host = opts and opts.host
  if host and host.isatty(0) then return run_tty(eng, host) end
  return run_plain(eng)
end

return M
