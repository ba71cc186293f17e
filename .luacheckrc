-- luacheck configuration (scripts/test runs: luacheck -q lua spec examples bench/engine)
std = "lua54"
max_line_length = 100
files["spec"] = { std = "+busted" }
