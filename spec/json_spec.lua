-- spec/json_spec.lua - exact JSON at the CLI: a payload given as JSON comes
-- back from the store byte-for-byte the same JSON (integers exact to int64,
-- floats in their shortest exact form and still floats, empty arrays still
-- arrays, slashes unescaped), and bad JSON is refused naming where.
local h = require "spec.helpers"
local lash = require "lash"
local core = require "lash.core"

-- h.cli with its stdout's last newline taken off.
local function lash_cmd(db, ...)
  local code, out, err = h.cli(db, ...)
  return code, (out:gsub("\n$", "")), err
end

-- Each document is given as the input of a start and must read back the same.
local DOCS = {
  "0", "-1", "9007199254740993", "9223372036854775807", "-9223372036854775808",
  "0.1", "1.0", "-2.5", "1e+300", "5e-324", "1.7976931348623157e+308", "-0.0",
  "true", "false", '""', '"caf\u{e9} \u{1F600}"', '"a/b\\\\c\\"d\\n\\t"',
  "[]", "{}", "[[]]", '{"items":[]}', '{"a":{}}', "[1,null,2]", '{"n":null}',
  '{"tweet_id":1541815603606036480}', '["../scripts/x","http://e.x/y"]',
  '{"a":1,"b":[1.5,2,{"c":[]}],"d":"x"}',
}

describe("exact JSON through the CLI and the store", function()
  after_each(h.cleanup)

  it("start INPUT then show --json gives back INPUT exactly, for every JSON type", function()
    local db = h.store_path()
    local bad = {}
    for i, doc in ipairs(DOCS) do
      local id = "j" .. i
      local code, out, err = lash_cmd(db, "start", "k", doc, "--id", id)
      assert.are.equal(0, code, err)
      assert.are.equal(id, out)
      code, out, err = lash_cmd(db, "show", id, "--json")
      assert.are.equal(0, code, err)
      local ok, rec = core.json_decode(out)
      assert.is_true(ok, out)
      local back = core.json_encode(rec.input)
      if back ~= doc then bad[#bad + 1] = doc .. " -> " .. back end
      -- and the raw text of show --json holds the input as given
      if not out:find('"input":' .. doc, 1, true) then bad[#bad + 1] = doc .. " in " .. out end
    end
    assert.same({}, bad)
  end)

  it("keeps integers and floats apart in the stored payload", function()
    local db = h.store_path()
    assert.are.equal(0, (lash_cmd(db, "start", "k", '{"i":9007199254740993,"f":2.0}', "--id", "x")))
    local eng = h.open(db)
    local input = eng:get("x").input
    assert.are.equal("integer", math.type(input.i))
    assert.are.equal(9007199254740993, input.i)
    assert.are.equal("float", math.type(input.f))
  end)

  it("a signal payload and an outcome keep empty arrays and big integers", function()
    local db = h.store_path()
    assert.are.equal(0, (lash_cmd(db, "start", "k", "null", "--id", "s")))
    local code, out = lash_cmd(db, "signal", "s", "go", '{"tags":[],"n":-9223372036854775808}')
    assert.are.equal(0, code)
    assert.truthy(out:find("signal.go", 1, true))
    code, out = lash_cmd(db, "events", "s", "--json")
    assert.are.equal(0, code)
    assert.truthy(out:find('"payload":{"n":-9223372036854775808,"tags":[]}', 1, true), out)
  end)

  it("lists are arrays: ps, events and check print [] when empty", function()
    local db = h.store_path()
    assert.are.equal(0, (lash_cmd(db, "start", "k", "1", "--id", "e")))
    local _, out = lash_cmd(db, "events", "e", "--json")
    assert.are.equal("[]", out)
    _, out = lash_cmd(db, "ps", "--status", "failed", "--json")
    assert.are.equal("[]", out)
    _, out = lash_cmd(db, "check", "--json")
    assert.are.equal('{"ok":true,"problems":[]}', out)
  end)

  it("refuses bad JSON naming the position, and writes nothing", function()
    local db = h.store_path()
    assert.are.equal(0, (lash_cmd(db, "start", "k", "1", "--id", "first")))
    local function change_seq()
      local eng = assert(lash.open(db))
      local cs = eng:stats().change_seq
      eng:close()
      return cs
    end
    local before = change_seq()
    for _, doc in ipairs({ '{"a":', "[1,]", "12345678901234567890123", "{'a':1}" }) do
      local code, _, err = lash_cmd(db, "start", "k", doc, "--id", "bad")
      assert.are.equal(2, code)
      assert.truthy(err:find("bad JSON input", 1, true), err)
      assert.truthy(err:find("line 1, column %d+"), err)
      assert.is_nil(err:find("T_END", 1, true))
    end
    assert.are.equal(before, change_seq())
  end)
end)

describe("lash.array", function()
  after_each(h.cleanup)

  it("keeps an empty array an array through the store", function()
    local eng = h.open()
    local id = eng:start("k", { items = lash.array(), m = {} })
    local input = eng:get(id).input
    assert.are.equal('{"items":[],"m":{}}', core.json_encode(input))
    assert.is_false(rawequal(lash.array(), lash.array())) -- a fresh table each time
    assert.are.equal("[]", core.json_encode(lash.array()))
  end)

  it("marks decoded arrays, so a decoded [] encodes as []", function()
    local v = lash.decode(lash.encode(lash.array {}))
    assert.are.equal(getmetatable(lash.array {}), getmetatable(v))
    assert.are.equal("[]", core.json_encode(v))
    assert.are.equal("{}", core.json_encode({}))
  end)

  it("raises on a non-table", function()
    assert.has_error(function() lash.array(5) end)
  end)
end)
