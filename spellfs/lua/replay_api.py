"""The ``Replay`` global: rs-llmspell's replay configuration objects, and spellfs's replay.

rs-llmspell's ``Replay`` (its hook-replay API) describes replays: ``Replay.modes``
(``exact``, ``modified``, ``simulate``, ``debug``, each with ``:name()``),
``Replay.create_config(mode)`` (``get_mode``, ``should_compare_results``,
``get_timeout_seconds``, ``add_modification(path, value, enabled)``,
``get_modifications``), ``Replay.create_modification(path, value, enabled)``
(``get_path``, ``get_value``, ``is_enabled``, ``set_enabled``), ``Replay.schedules``
(``once(delay)``, ``interval(initial, every, max)``, ``cron(expr)``, each with
``:type_name()``) and ``Replay.create_comparator()``, whose ``compare_json(a, b)`` returns
``{identical, similarity_score, summary, differences = {{path, description}, …}}``.
These are kept as the plain values rs-llmspell scripts build and inspect.

What replays here is spellfs's own replay: ``Replay.session(session, opts)`` is
``Session.replay`` (re-run the session's recorded runs in the world each saw, model calls
and searches answered from the records, and report what differs). rs-llmspell's hook
executions are not recorded by spellfs, so a config's modifications and schedules are not
applied to anything: they describe, they do not run.

``similarity_score`` is the share of leaf values (numbers, strings, booleans, at their
paths) equal on both sides, 1.0 for two empty tables.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..workspace import Workspace
    from .runtime import Runtime

__all__ = ["install"]

_REPLAY = rb"""
local setmetatable, type, pairs, ipairs, tostring, string_format, table_sort =
  setmetatable, type, pairs, ipairs, tostring, string.format, table.sort
local Session = Session

local function mode(name)
  return {name = function() return name end}
end
local modes = {exact = mode("exact"), modified = mode("modified"),
               simulate = mode("simulate"), debug = mode("debug")}

local function modification(path, value, enabled)
  if type(path) ~= "string" then error("Replay.create_modification: path must be a string", 2) end
  local m = {path = path, value = value, enabled = enabled ~= false}
  function m:get_path() return self.path end
  function m:get_value() return self.value end
  function m:is_enabled() return self.enabled end
  function m:set_enabled(on) self.enabled = on and true or false end
  return m
end

local function create_config(m)
  local c = {mode = m or modes.exact, modifications = {}, compare_results = true, timeout = 30}
  function c:get_mode() return self.mode end
  function c:should_compare_results() return self.compare_results end
  function c:get_timeout_seconds() return self.timeout end
  function c:add_modification(path, value, enabled)
    self.modifications[#self.modifications + 1] = modification(path, value, enabled)
    return self
  end
  function c:get_modifications() return self.modifications end
  return c
end

local function schedule(kind, fields)
  fields.type = kind
  fields.type_name = function() return kind end
  return fields
end
local schedules = {
  once = function(delay) return schedule("once", {delay = delay}) end,
  interval = function(initial, every, max)
    return schedule("interval", {initial_delay = initial, interval = every, max_executions = max})
  end,
  cron = function(expr) return schedule("cron", {expression = expr}) end,
}

local function keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table_sort(out, function(a, b) return tostring(a) < tostring(b) end)
  return out
end

local function compare(a, b, path, diffs, counts)
  if type(a) == "table" and type(b) == "table" then
    local seen = {}
    for _, k in ipairs(keys(a)) do
      seen[k] = true
      local p = path == "" and tostring(k) or path .. "." .. tostring(k)
      if b[k] == nil then
        diffs[#diffs + 1] = {path = p, description = "missing in the second"}
        counts.total = counts.total + 1
      else
        compare(a[k], b[k], p, diffs, counts)
      end
    end
    for _, k in ipairs(keys(b)) do
      if not seen[k] then
        local p = path == "" and tostring(k) or path .. "." .. tostring(k)
        diffs[#diffs + 1] = {path = p, description = "added in the second"}
        counts.total = counts.total + 1
      end
    end
    return
  end
  counts.total = counts.total + 1
  if a == b then
    counts.same = counts.same + 1
  else
    diffs[#diffs + 1] = {path = path == "" and "$" or path,
      description = string_format("%s -> %s", tostring(a), tostring(b))}
  end
end

local function create_comparator()
  local cmp = {}
  function cmp:compare_json(a, b)
    local diffs, counts = {}, {same = 0, total = 0}
    compare(a, b, "", diffs, counts)
    local score = counts.total == 0 and 1.0 or counts.same / counts.total
    return {identical = #diffs == 0, similarity_score = score, differences = diffs,
            summary = #diffs == 0 and "identical"
              or string_format("%d difference%s", #diffs, #diffs == 1 and "" or "s")}
  end
  return cmp
end

return {
  modes = modes,
  schedules = schedules,
  create_config = create_config,
  create_modification = modification,
  create_comparator = create_comparator,
  session = function(ref, opts) return Session.replay(ref, opts) end,
}
"""


def install(rt: "Runtime", ws: "Workspace") -> None:
    rt.set_global("Replay", rt.lua.execute(_REPLAY))
