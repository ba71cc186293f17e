-- spec/install_spec.lua - `cmake --install` into a temp prefix gives a
-- usable package: pkg-config finds liblash and lash.h (a C program opens a
-- store), stock lua5.4 finds `require "lash"` with only that prefix on its
-- paths, and the installed `lash` and its man page are there.
local h = require "spec.helpers"

local BUILD = os.getenv("LASH_BUILD") or (h.root .. "/build")

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"rc=$?\"")
  local s = p:read("a")
  p:close()
  local body, rc = s:match("^(.-)rc=(%d+)%s*$")
  return tonumber(rc), body
end

describe("install", function()
  local prefix

  setup(function()
    prefix = h.tmpdir()
    local rc, out = sh("cmake --install " .. h.q(BUILD) .. " --prefix " .. h.q(prefix))
    assert(rc == 0, "cmake --install failed:\n" .. out)
  end)

  teardown(function()
    h.cleanup()
  end)

  it("puts the executable, library, header, pc file, Lua modules and man page in place",
    function()
      for _, f in ipairs { "bin/lash", "lib/liblash.a", "include/lash.h", "lib/pkgconfig/lash.pc",
        "lib/lua/5.4/lash/core.so", "share/lua/5.4/lash/init.lua",
        "share/lua/5.4/lash/cli.lua", "share/lua/5.4/lash/repl.lua",
        "share/lua/5.4/lash/format.lua", "share/man/man1/lash.1" } do
        assert.is_truthy(io.open(prefix .. "/" .. f, "r"), f .. " is missing")
      end
    end)

  it("pkg-config --cflags --libs lash builds a C program that opens a store", function()
    local dir = h.tmpdir()
    h.write_file(dir .. "/t.c", [[
#include <lash.h>
#include <stdio.h>
int main(int argc, char **argv) {
  lash_store *s = NULL;
  char err[256];
  int rc = lash_store_open(argv[1], NULL, &s, err, sizeof err);
  (void)argc;
  if (rc < 0) { fprintf(stderr, "%s\n", err); return 1; }
  printf("opened %s\n", lash_version());
  lash_store_close(s);
  return 0;
}
]])
    local rc, out = sh(string.format(
      "cd %s && export PKG_CONFIG_PATH=%s && cc t.c -o t $(pkg-config --cflags --libs lash)",
      h.q(dir), h.q(prefix .. "/lib/pkgconfig")))
    assert.are.equal(0, rc, out)
    rc, out = sh(h.q(dir .. "/t") .. " " .. h.q(dir .. "/store"))
    assert.are.equal(0, rc, out)
    assert.matches("^opened %d+%.%d+%.%d+", out)
    assert.is_truthy(io.open(dir .. "/store/data.mdb", "r"))
  end)

  it("lua5.4 finds require 'lash' with only the prefix on its paths", function()
    local dir = h.tmpdir()
    local lpath = prefix .. "/share/lua/5.4/?.lua;" .. prefix .. "/share/lua/5.4/?/init.lua"
    local cpath = prefix .. "/lib/lua/5.4/?.so"
    local rc, out = sh(string.format(
      "cd %s && LUA_PATH=%s LUA_CPATH=%s lua5.4 -e %s", h.q(dir), h.q(lpath), h.q(cpath),
      h.q([[
        local lash = require "lash"
        assert(package.searchpath("lash", package.path):find("share/lua/5.4", 1, true))
        local eng = assert(lash.open("s", {durability = "none"}))
        eng:define("k", function(_, x) return x + 1 end)
        local id = eng:start("k", 41)
        print(eng:await(id, {timeout_ms = 2000}).value)
        eng:close()
      ]])))
    assert.are.equal(0, rc, out)
    assert.are.equal("42\n", out)
  end)

  it("the installed lash runs from anywhere without Lua paths", function()
    local rc, out = sh(string.format("cd / && env -u LUA_PATH -u LUA_CPATH %s --version",
      h.q(prefix .. "/bin/lash")))
    assert.are.equal(0, rc, out)
    assert.matches("^lash %d+%.%d+%.%d+", out)
  end)
end)
