"""The ``Tool`` global: the built-in tools of :mod:`spellfs.tools`, with tool hooks.

``Tool.get(name)`` returns ``nil`` for an unknown tool (scripts test ``if calc
then``); ``Tool.invoke`` of one is an error naming the known tools. Every
execution runs the ``BeforeToolExecution`` hooks (which may replace ``params`` or
cancel) and ``AfterToolExecution`` hooks (which see, and may replace, ``result``).
``file_operations`` works inside the workspace: relative paths resolve against
its root and nothing outside it (nor spellfs's own files) is reachable.

A *machine* tool (network or host) that spell.yaml's ``tools.allow`` does not name, or
any machine tool under ``--sandbox``, answers ``{success = false, error = "... is off
..."}`` rather than raising, as rs-llmspell's refused tools do, so scripts that test
``result.success`` carry on. ``Tool.list()`` gives ``{name, description, version,
category, enabled}`` tables; ``Tool.exists(name)``; ``Tool.get(name):getSchema()``
(also ``Tool.get_schema(name)``) gives ``{name, description, parameters = {...}}``.
``web_search`` is recorded in the session like a model call and answered from the record
under ``spell replay`` (:mod:`spellfs.tools.recorded`).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from ..errors import NotFound, SpellError, UsageError

if TYPE_CHECKING:
    from ..workspace import Workspace
    from .runtime import Runtime

__all__ = ["install"]


def install(rt: "Runtime", ws: "Workspace") -> None:
    py, out = rt.py, rt.out
    ctx = SimpleNamespace(root=ws.root, workspace=ws, sandbox=rt.sandbox)

    def tools() -> dict:
        from ..tools import TOOLS

        return TOOLS

    def canonical(name: str) -> str:
        from ..tools import canonical as canonical_name

        return canonical_name(name)

    def prepare(name: str, args: Any) -> tuple[Any, Any]:
        """``(run, finish)``: hooks and gating here, ``run()`` thread-safe (workflow steps)."""
        from ..tools import available

        if name in getattr(rt, "extra_tools", {}):
            return wrapped(name, args)
        tool = tools().get(canonical(name))
        if tool is None:
            raise NotFound(f"tool not found: {name} (known: {', '.join(sorted(tools()))})")
        name = tool.name
        if not isinstance(args, dict):
            raise UsageError(f"{name}: parameters must be a table, got {type(args).__name__}")
        sid = ws.current_session
        hooks = ws.hooks
        if hooks.active("BeforeToolExecution"):
            args = hooks.run(
                "BeforeToolExecution",
                sid,
                {"tool": name, "params": args},
                {"name": name, "component_type": "tool"},
            ).get("params", args)
        refused = available(name, ws.config.get("tools.allow"), rt.sandbox)
        recorded = None
        if not refused and tool.request is not None:  # web_search: recorded like a model call
            from ..tools import prepare_recorded
            from .recording import recording_session, run_recorder

            recorded = prepare_recorded(
                tool, args, ctx, run_recorder(rt, ws), lambda: recording_session(ws)
            )

        def run() -> dict:
            if recorded is not None:
                return recorded[0]()
            return {"success": False, "error": refused} if refused else tool.execute(args, ctx)

        def finish(result: dict) -> dict:
            if recorded is not None:
                result = recorded[1](result)
            if hooks.active("AfterToolExecution"):
                result = hooks.run(
                    "AfterToolExecution",
                    sid,
                    {"tool": name, "params": args, "result": result},
                    {"name": name, "component_type": "tool"},
                ).get("result", result)
            return result

        return run, finish

    def wrapped(name: str, args: dict) -> tuple[Any, Any]:
        """An agent wrapped as a tool (Agent.wrapAsTool): asked here, on the script's thread."""
        _, agent_name = rt.extra_tools[name]  # type: ignore[attr-defined]
        run, finish = rt.agent_preparers[agent_name](out(args))  # type: ignore[attr-defined]
        try:
            answer = finish(run())
            result = {
                "success": True,
                "result": {"output": answer.get("text", ""), "agent": agent_name},
            }
        except SpellError as e:
            result = {"success": False, "error": f"{name}: {e}"}
        return (lambda: result), (lambda r: r)

    rt.tool_prepare = prepare  # type: ignore[attr-defined]

    def execute(name: str, params: Any) -> Any:
        args = py(params) if params is not None else {}
        if not isinstance(args, dict):
            raise UsageError(f"{name}: parameters must be a table, got {rt.lua_type(params)}")
        run, finish = prepare(name, args)
        return out(finish(run()))

    def get(name: Any = None) -> Any:
        tool_name = rt.text(name, "Tool.get: tool name")
        tool = tools().get(canonical(tool_name))
        if tool is None:
            return None
        return rt.table(
            f"tool {tool_name}",
            {
                "execute": lambda _self=None, params=None: execute(tool_name, params),
                "getSchema": lambda _self=None: out(tool.schema()),
            },
            {
                "name": tool.name,
                "description": tool.description,
                "version": tool.version,
                "category": tool.category,
            },
        )

    def exists(name: Any = None) -> bool:
        if not isinstance(name, bytes):
            return False
        text = rt.text(name, "Tool.exists: tool name")
        return canonical(text) in tools() or text in getattr(rt, "extra_tools", {})

    def schema(name: Any = None) -> Any:
        tool = tools().get(canonical(rt.text(name, "Tool.get_schema: tool name")))
        return None if tool is None else out(tool.schema())

    def invoke(name: Any, params: Any = None) -> Any:
        return execute(rt.text(name, "Tool.invoke: tool name"), params)

    # Entries print as their name (scripts written for the older string list use %s on them).
    named = rt.lua.execute(b"""
local setmetatable, ipairs = setmetatable, ipairs
local mt = {__tostring = function(t) return t.name end}
return function(list) for _, t in ipairs(list) do setmetatable(t, mt) end return list end
""")

    def list_() -> Any:
        from ..tools import available

        allow = ws.config.get("tools.allow")
        return named(
            out(
                [
                    {
                        "name": t.name,
                        "description": t.description,
                        "version": t.version,
                        "category": t.category,
                        "enabled": available(t.name, allow, rt.sandbox) is None,
                    }
                    for _, t in sorted(tools().items())
                ]
                + [
                    {
                        "name": n,
                        "description": d,
                        "version": "1.0.0",
                        "category": "agent",
                        "enabled": True,
                    }
                    for n, (d, _) in sorted(getattr(rt, "extra_tools", {}).items())
                ]
            )
        )

    rt.set_global(
        "Tool",
        rt.table(
            "Tool",
            {
                "get": get,
                "getByName": get,
                "invoke": invoke,
                "execute": invoke,
                "list": list_,
                "exists": exists,
                "get_schema": schema,
                "getSchema": schema,
            },
        ),
    )
