-- spec/docs_spec.lua - the reference in docs/ covers the whole surface: every
-- public Lua function and method, every ctx method, every CLI command and
-- every flag its usage line names. A call or flag added without its entry in
-- the docs fails here, so the two cannot drift apart silently.
local h = require "spec.helpers"
local lash = require "lash"
local core = require "lash.core"

local BIN = os.getenv("LASH_BIN") or (h.root .. "/build/bindings/lash")

local function doc(name)
  local text = h.read_file(h.root .. "/docs/" .. name)
  assert(text, "docs/" .. name .. " is missing")
  return text
end

local function sorted_functions(t)
  local names = {}
  for k, v in pairs(t) do
    if type(k) == "string" and type(v) == "function" then names[#names + 1] = k end
  end
  table.sort(names)
  return names
end

-- Names of `names` that `text` does not mention as PREFIX .. name followed by
-- "(" (a call or a signature).
local function missing(text, prefix, names)
  local out = {}
  for _, n in ipairs(names) do
    if not text:find(prefix .. n .. "(", 1, true) then out[#out + 1] = prefix .. n end
  end
  return out
end

local function run(args)
  local p = assert(io.popen(h.q(BIN) .. " " .. args .. " 2>&1"))
  local out = p:read("a")
  p:close()
  return out
end

-- The commands that `lash --help` lists.
local function commands()
  local out, in_list = {}, false
  for line in run("--help"):gmatch("[^\n]*") do
    if line == "commands:" then
      in_list = true
    elseif in_list then
      local name = line:match("^  (%S+)")
      if not name then break end
      out[#out + 1] = name
    end
  end
  return out
end

describe("docs/", function()
  after_each(h.cleanup)

  it("lua-api.md documents every function of the lash module", function()
    local names = sorted_functions(lash)
    assert.is_true(#names >= 3)
    assert.same({}, missing(doc("lua-api.md"), "lash.", names))
    assert.truthy(doc("lua-api.md"):find("lash.null", 1, true))
  end)

  it("lua-api.md documents every engine method", function()
    local names = sorted_functions(core.Engine)
    assert.is_true(#names >= 20)
    assert.same({}, missing(doc("lua-api.md"), "eng:", names))
  end)

  it("lua-api.md documents every ctx method", function()
    local names = sorted_functions(core.Ctx)
    assert.is_true(#names >= 5)
    assert.same({}, missing(doc("lua-api.md"), "ctx:", names))
  end)

  it("lua-api.md lists every option lash.open accepts", function()
    local text = doc("lua-api.md")
    -- Every option named in the table is accepted, and an unknown one raises:
    -- so the table and lash.open agree when each named option opens a store.
    local dir = h.tmpdir()
    for opt in text:match("### `lash.open.-\n(.-)\n###"):gmatch("\n| `([%w_]+)`") do
      local ok, err = pcall(lash.open, dir .. "/s", { [opt] = {} })
      assert.is_false(ok)
      assert.truthy(tostring(err):find(opt, 1, true))
      assert.is_nil(tostring(err):find("unknown option", 1, true), opt .. " is not an option")
    end
  end)

  it("the REPL's help has a line for every call", function()
    local help = require "lash.help"
    local gaps = {}
    for prefix, t in pairs({ ["lash."] = lash, ["eng:"] = core.Engine, ["ctx:"] = core.Ctx }) do
      for _, n in ipairs(sorted_functions(t)) do
        if not help.entries[prefix .. n] then gaps[#gaps + 1] = prefix .. n end
      end
    end
    assert.same({}, gaps)
  end)

  it("cli.md documents every command and every flag of its usage line", function()
    local text = doc("cli.md")
    local cmds = commands()
    assert.is_true(#cmds >= 10)
    local gaps = {}
    for _, c in ipairs(cmds) do
      local head = "## `lash " .. c
      local at = text:find(head, 1, true)
      if not at then
        gaps[#gaps + 1] = "command " .. c
      else
        local section = text:sub(at, (text:find("\n## ", at + 1, true) or #text + 1) - 1)
        local usage = run(c .. " --help"):match("usage: ([^\n]*)")
        assert.truthy(usage, c .. " --help prints no usage line")
        for flag in usage:gmatch("%-%-[%w-]+") do
          if flag ~= "--db" and flag ~= "--help" and not section:find(flag, 1, true) then
            gaps[#gaps + 1] = c .. " " .. flag
          end
        end
      end
    end
    assert.same({}, gaps)
  end)

  it("the README links only into the repository", function()
    local readme = h.read_file(h.root .. "/README.md")
    assert.is_nil(readme:find("../shared", 1, true))
    for target in readme:gmatch("%]%(([^)#]+)") do
      if not target:match("^%a+://") then
        local f = io.open(h.root .. "/" .. target, "r")
        assert.truthy(f, "README links to missing " .. target)
        if f then f:close() end
      end
    end
  end)
end)
