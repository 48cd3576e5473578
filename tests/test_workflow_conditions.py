"""``{type = "custom", expression = …}`` conditions (spellfs.workflow.conditions): the forms
rs-llmspell's evaluator understands are evaluated; anything else is a one-line error."""

from __future__ import annotations

import pytest

from spellfs import Workspace
from spellfs.lua.runtime import Runtime

BRANCHES = """
local function pick(expr, input)
  local r = Workflow.conditional({name = "c", branches = {
    {name = "yes", condition = {type = "custom", expression = expr, description = "d"},
     steps = {{name = "y", type = "custom", func = function() return "yes" end}}},
    {name = "no", condition = {type = "always"},
     steps = {{name = "n", type = "custom", func = function() return "no" end}}},
  }}):execute(input)
  if not r.success then return "error: " .. tostring(r.error) end
  return r.data.final_output
end
"""


@pytest.fixture
def lua(ws: Workspace):
    rt = Runtime(ws)
    rt.install()
    return lambda code: rt.lua.execute((BRANCHES + code).encode())


@pytest.mark.parametrize(
    "expr, input, chosen",
    [
        ("true", "nil", b"yes"),
        (" false ", "nil", b"no"),
        ('shared_data.mode == \\"batch\\"', '{mode = "batch"}', b"yes"),
        ('shared_data.mode == \\"batch\\"', '{mode = "stream"}', b"no"),
        ('shared_data.mode == \\"batch\\"', "{}", b"no"),
        ("shared_data.ready == true", "{ready = true}", b"yes"),
        ("shared_data.ready == true", "{ready = 1}", b"no"),
        ("shared_data.count == 3", "{count = 3}", b"yes"),
        ("shared_data.count == 3", "{count = 4}", b"no"),
    ],
)
def test_custom_expressions_over_shared_data(lua, expr: str, input: str, chosen: bytes) -> None:
    assert lua(f'return pick("{expr}", {input})') == chosen


def test_step_result_success_and_failed_name_the_step(lua) -> None:
    out = lua("""
    local function inner(expr)
      return Workflow.conditional({name = "inner", branches = {
        {name = "yes", condition = {type = "custom", expression = expr},
         steps = {{name = "y", type = "custom", func = function() return "yes" end}}},
        {name = "no", steps = {{name = "n", type = "custom", func = function() return "no" end}}},
      }})
    end
    local results = {}
    for _, expr in ipairs({"step_result.good.success", "step_result.bad.success",
                           "step_result.bad.failed", "step_result.missing.success"}) do
      local r = Workflow.sequential({name = "s", error_strategy = "continue", steps = {
        {name = "good", tool = "calculator", input = {input = "1 + 1"}},
        {name = "bad", tool = "calculator", input = {input = "1 +"}},
        {name = "pick", type = "workflow", workflow = inner(expr)},
      }}):execute()
      results[#results + 1] = tostring(r.data.steps.pick.output)
    end
    return table.concat(results, ",")
    """)
    assert out == b"yes,no,yes,no"


@pytest.mark.parametrize(
    "expr, says",
    [
        ("data.temperature > 100 and data.pressure < 50", b"unsupported expression"),
        ("shared_data.x == maybe", b"cannot read the value"),
        ("", b"expression must be a non-empty string"),
    ],
)
def test_other_expressions_fail_the_workflow_with_one_line(lua, expr: str, says: bytes) -> None:
    out = lua(f'return pick("{expr}", {{}})')
    assert out.startswith(b"error: ") and says in out and b"\n" not in out, out
    if says == b"unsupported expression":
        assert b"use a function condition" in out


def test_shared_data_exists_and_expected_value(lua) -> None:
    out = lua("""
    local function run(cond, input)
      return Workflow.conditional({name = "c", branches = {
        {name = "yes", condition = cond,
         steps = {{name = "y", type = "custom", func = function() return "yes" end}}},
        {name = "no", steps = {{name = "n", type = "custom", func = function() return "no" end}}},
      }}):execute(input).data.final_output
    end
    return run({type = "shared_data_exists", key = "k"}, {k = 1}),
           run({type = "shared_data_exists", key = "k"}, {}),
           run({type = "shared_data_equals", key = "k", expected_value = "v"}, {k = "v"})
    """)
    assert out == (b"yes", b"no", b"yes")
