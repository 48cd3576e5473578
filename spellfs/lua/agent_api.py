"""The ``Agent`` global: model calls through :mod:`spellfs.agent.providers`, recorded by
:mod:`spellfs.agent.calls`.

``Agent`` exists when a provider is configured (``agents.providers`` in
spell.yaml, or ``OPENAI_API_KEY``/``ANTHROPIC_API_KEY``), or under a replay whose
session has recorded calls; otherwise it is nil, and a script that indexes it
anyway gets :data:`NO_PROVIDER_HINT` appended to its error by the runtime.

``Agent.create(opts)`` checks its options and returns an agent table (``name``,
``model``, ``provider``, ``session_id`` and ``invoke``); an agent is stateless:
each ``invoke`` sends the system prompt plus the given text or messages. The
runtime has one :class:`~spellfs.agent.client.Client`, so connections are reused.

Where a call's answer comes from and how it is recorded: :mod:`.agent_calls`; what
``invoke`` accepts: :mod:`.agent_messages`; the run's recording session:
:mod:`.recording`.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

from ..config import PROVIDER_HINT
from ..errors import ConfigError, SpellError, UsageError
from .agent_calls import AgentCalls, resolve_provider
from .agent_messages import invocation_messages, shown_answer

# Moved to .recording; still importable from here for callers written before the split.
from .recording import end_run_session, recording_session, run_recorder, run_session

if TYPE_CHECKING:
    from ..workspace import Workspace
    from .runtime import Runtime

__all__ = [
    "CREATE_OPTIONS",
    "NO_PROVIDER_HINT",
    "AgentCalls",
    "end_run_session",
    "install",
    "recording_session",
    "run_recorder",
    "run_session",
]

NO_PROVIDER_HINT = (
    f"(Agent is nil: no model provider is configured; {PROVIDER_HINT}; scripts can test `if "
    "Agent ~= nil then`)"
)
CREATE_OPTIONS = (
    "name",
    "model",
    "provider",
    "system_prompt",
    "temperature",
    "max_tokens",
    "base_url",
    "session_id",
    "description",
)
_AGENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
#: The variables that make :func:`~spellfs.agent.providers.providers_from_config` find a provider
#: when spell.yaml names none (``providers.ENV_KEY``, and ``OPENAI_BASE_URL`` alone for a
#: keyless local server); looked at here, so a script that can have no Agent never imports
#: the provider and call-record code.
_PROVIDER_ENV = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL")
_NOT_REPLAYING = ("", "0", "live", "false", "no")


def _replay_mode(environ: Any) -> str:
    return (environ.get("SPELL_REPLAY") or "").strip().lower()


def install(rt: "Runtime", ws: "Workspace") -> None:
    py, out = rt.py, rt.out
    _install_session_usage(rt, ws)
    if (
        ws.config.get("agents.providers") is None
        and _replay_mode(os.environ) in _NOT_REPLAYING
        and not any((os.environ.get(k) or "").strip() for k in _PROVIDER_ENV)
    ):
        return  # Agent stays nil: no provider configured, none in the environment, no replay
    try:
        from ..agent import workspace_providers

        providers = workspace_providers(ws)
        problem = None
    except ConfigError as exc:
        providers, problem = {}, exc
    calls = AgentCalls(ws, providers, recorder=run_recorder(rt, ws))
    if problem is None and not providers and not (calls.replaying and calls.has_recordings()):
        return  # Agent stays nil
    rt.agent_calls = calls  # type: ignore[attr-defined]

    noted: set[str] = set()
    registry: dict[str, Any] = {}  # name -> agent table (Agent.get)
    preparers: dict[str, Any] = {}  # name -> prepared(input) -> (run, finish)
    rt.agent_preparers = preparers  # type: ignore[attr-defined]

    def lenient(o: dict, where: str) -> dict:
        """rs-llmspell's spellings mapped; other unknown options named once on stderr."""
        o = dict(o)
        model = o.get("model")
        if isinstance(model, dict):  # Agent.register's {provider, model_id, temperature, ...}
            o.pop("model")
            for key in ("temperature", "max_tokens"):
                if key in model and key not in o:
                    o[key] = model[key]
            if isinstance(model.get("model_id"), str):
                o["model"] = model["model_id"]
            if isinstance(model.get("provider"), str) and "provider" not in o:
                o["provider"] = model["provider"]
        if "model" not in o and isinstance(o.get("provider_model"), str):
            o["model"] = o["provider_model"]
        custom = o.get("custom_config")
        if isinstance(custom, dict) and isinstance(custom.get("system_prompt"), str):
            o.setdefault("system_prompt", custom["system_prompt"])
        if isinstance(o.get("prompt"), str):
            o.setdefault("system_prompt", o["prompt"])
        unknown = sorted(set(o) - set(CREATE_OPTIONS))
        fresh = [k for k in unknown if k not in noted]
        if fresh:
            noted.update(fresh)
            import sys

            print(
                f"spell: {where}: ignoring options spellfs does not use: {', '.join(fresh)}",
                file=sys.stderr,
            )
        return {k: v for k, v in o.items() if k in CREATE_OPTIONS}

    def create(opts: Any = None) -> Any:
        return make(opts, "Agent.create")

    def make(opts: Any, where: str) -> Any:
        if problem is not None:
            raise problem
        o = py(opts) if opts is not None else {}
        if not isinstance(o, dict):
            raise UsageError(f"{where}: expected a table of options, got {rt.lua_type(opts)}")
        o = lenient(o, where)
        name = o.get("name") or "agent"
        if not isinstance(name, str) or not _AGENT_NAME.match(name):
            raise UsageError(
                f"{where}: invalid name {str(name)[:70]!r} (letters, digits, '_', '.', '-'; "
                "it names the call artifacts)"
            )
        sid = o.get("session_id") or None
        session_dir = None
        if sid is not None:
            session_dir = ws.sessions.resolve(sid)
            sid = ws.sessions.manifest(session_dir)["id"]
        elif calls.replaying:
            try:
                session_dir = ws.sessions.resolve(calls.default_session())
            except SpellError:
                session_dir = None
        provider, model = resolve_provider(calls, o, session_dir)
        system = o.get("system_prompt")
        if system is not None and not isinstance(system, str):
            raise UsageError(f"{where}: system_prompt must be a string")
        base = {
            "model": model,
            "system": system,
            "temperature": o.get("temperature"),
            "max_tokens": o.get("max_tokens"),
        }
        from ..agent import normalize_request

        normalize_request(
            {**base, "messages": [{"role": "user", "content": "-"}]}
        )  # options checked now
        agent = {
            "name": name,
            "provider": provider,
            "model": model,
            "session_id": sid,
            "base": base,
            "description": o.get("description") or "",
        }
        calls.agents.append(agent)

        def prepared(input: Any) -> tuple[Any, Any]:
            messages = invocation_messages(rt, name, input)
            hooks = ws.hooks
            current = ws.current_session
            if hooks.active("BeforeAgentExecution"):
                data = hooks.run(
                    "BeforeAgentExecution",
                    current,
                    {"agent": name, "agent_name": name, "input": messages},
                    {"name": name, "component_type": "agent"},
                )
                messages = data.get("input", messages) or messages
            run, done = calls.prepare(agent, {**base, "messages": messages})

            def finish(answer: dict) -> dict:
                answer = done(answer)
                if hooks.active("AfterAgentExecution"):
                    data = hooks.run(
                        "AfterAgentExecution",
                        current,
                        {"agent": name, "agent_name": name, "input": messages, "output": answer},
                        {"name": name, "component_type": "agent"},
                    )
                    answer = data.get("output", answer) or answer
                return answer

            return run, finish

        def call(input: Any) -> Any:
            run, finish = prepared(input)
            return finish(run())

        def invoke(_self: Any = None, input: Any = None) -> Any:
            return out(shown_answer(call(input)))

        def invoke_stream(_self: Any = None, input: Any = None, callback: Any = None) -> Any:
            answer = call(input)  # one chunk: the whole answer (providers are not streamed here)
            if rt.lua_type(callback) == "function":
                rt.call(callback, out(answer.get("text", "")))
            return out(shown_answer(answer))

        state_key = f"agent:{name}:saved"

        def save_state(_self: Any = None) -> bool:
            ws.state.set(
                state_key,
                {"name": name, "model": f"{provider.name}/{model}", "system_prompt": system},
            )
            return True

        def load_state(_self: Any = None) -> bool:
            return ws.state.get(state_key) is not None

        def delete_state(_self: Any = None) -> bool:
            return bool(ws.state.delete(state_key))

        def destroy(_self: Any = None) -> bool:
            """Forget the agent (Agent.get no longer finds it); its records stay."""
            registry.pop(name, None)
            preparers.pop(name, None)
            return True

        table = rt.table(
            f"agent {name}",
            {
                "invoke": invoke,
                "execute": invoke,
                "invokeStream": invoke_stream,
                "saveState": save_state,
                "loadState": load_state,
                "deleteState": delete_state,
                "getAgentState": lambda *_: b"ready",
                "destroy": destroy,
            },
            {
                "name": name,
                "model": f"{provider.name}/{model}",
                "provider": provider.name,
                "session_id": sid,
            },
        )
        registry[name] = table
        preparers[name] = prepared  # workflow agent steps: prepared here, run in the pool
        return table

    def register(opts: Any = None) -> Any:
        table = make(opts, "Agent.register")
        return table[b"name"]

    def get(name: Any = None) -> Any:
        return registry.get(rt.text(name, "Agent.get: agent name"))

    def list_() -> Any:
        return out(
            [
                {
                    "name": a["name"],
                    "model": f"{a['provider'].name}/{a['model']}",
                    "provider": a["provider"].name,
                    "session_id": a["session_id"],
                    "description": a["description"],
                }
                for a in calls.agents
            ]
        )

    def discover() -> Any:
        return out([{"type": "llm", "description": "a model behind a configured provider"}])

    def info(kind: Any = None) -> Any:
        if rt.py(kind) != "llm":
            return None
        return out(
            {
                "name": "llm",
                "description": "a model behind a configured provider",
                "capabilities": ["text"],
            }
        )

    def wrap_as_tool(name: Any = None, opts: Any = None) -> Any:
        agent_name = rt.text(name, "Agent.wrapAsTool: agent name")
        if agent_name not in preparers:
            raise UsageError(f"Agent.wrapAsTool: agent not found: {agent_name}")
        o = py(opts) if opts is not None else {}
        tool_name = o.get("tool_name") or f"{agent_name}_tool"
        description = o.get("description") or f"the agent {agent_name}, as a tool"
        extra = rt.__dict__.setdefault("extra_tools", {})
        extra[tool_name] = (description, agent_name)
        return out(tool_name)

    def create_composite(name: Any = None, members: Any = None, opts: Any = None) -> Any:
        composite = rt.text(name, "Agent.createComposite: name")
        names = py(members) if members is not None else []
        if not isinstance(names, list) or not all(
            isinstance(n, str) and n in preparers for n in names
        ):
            raise UsageError("Agent.createComposite: expected a list of names of created agents")

        def prepared(input: Any) -> tuple[Any, Any]:
            # The members answer in turn, each given the previous answer: run here, in order.
            answer: Any = None
            for member in names:
                run, finish = preparers[member](
                    input if answer is None else out(answer.get("text", ""))
                )
                answer = finish(run())
            return (lambda: answer), (lambda a: a)

        def invoke(_self: Any = None, input: Any = None) -> Any:
            run, finish = prepared(input)
            return out(finish(run()))

        preparers[composite] = prepared
        registry[composite] = rt.table(
            f"agent {composite}",
            {"invoke": invoke, "execute": invoke},
            {"name": composite, "members": names},
        )
        return out(composite)

    rt.set_global(
        "Agent",
        rt.table(
            "Agent",
            {
                "wrapAsTool": wrap_as_tool,
                "createComposite": create_composite,
                "listTemplates": lambda: out(["llm"]),
                "create": create,
                "register": register,
                "get": get,
                "list": list_,
                "discover": discover,
                "getInfo": info,
                "listCapabilities": lambda: out({"llm": ["text"]}),
                "discoverByCapability": lambda *_: out([]),
            },
        ),
    )


def _install_session_usage(rt: "Runtime", ws: "Workspace") -> None:
    """``Session.get`` also returns ``usage`` (calls and tokens) for a session with model calls."""
    session = rt.globals[b"Session"]
    if session is None:
        return

    def get(ref: Any = None) -> Any:
        info = ws.sessions.get(rt.py(ref))
        if ws.storage.exists(f"{info['path']}/calls.yaml"):
            from ..agent import read_calls, summarize

            usage = summarize(read_calls(ws, info["path"].split("/", 1)[1]))
            if usage:
                info["usage"] = usage
        return rt.out(info)

    session[b"get"] = rt.function("Session.get", get)
