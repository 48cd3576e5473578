"""The ``Agent`` global: model calls through :mod:`spellfs.agent.providers`, recorded by
:mod:`spellfs.agent.calls`.

``Agent`` exists when a provider is configured (``agents.providers`` in
spell.yaml, or ``OPENAI_API_KEY``/``ANTHROPIC_API_KEY``), or under a replay whose
session has recorded calls; otherwise it is nil, and a script that indexes it
anyway gets :data:`NO_PROVIDER_HINT` appended to its error by the runtime.

``Agent.create(opts)`` checks its options and returns an agent table (``name``,
``model``, ``provider``, ``session_id`` and ``invoke``); an agent is stateless:
each ``invoke`` sends the system prompt plus the given text or messages. The
runtime has one :class:`~spellfs.agent.providers.Client`, so connections are reused.

Where a call's answer comes from (``SPELL_REPLAY`` is set by ``spell replay``):

* ``SPELL_REPLAY=1`` with ``SPELL_REPLAY_CALLS=<file>`` (``spell replay`` sets it):
  from the calls the replayed run made, a JSON list of call records: the one
  with the same request hash, agent and call number, else the next unused one
  with the same request hash.
* ``SPELL_REPLAY=1``: from the recorded call with the same request hash in the
  replayed session's ancestors (then the target session's): the one the same
  agent made with the same call number, else the n-th identical request gets the
  n-th recorded answer. No recording is an error naming the
  call; the network is never used.
* ``agents.cache: true`` (not under a replay): from an identical earlier request.
* otherwise (and ``SPELL_REPLAY=live``): from the provider.

Every answered call is recorded (:func:`spellfs.agent.calls.record_call`); a
failed one records nothing.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
import weakref
from typing import TYPE_CHECKING, Any

from ..config import PROVIDER_HINT
from ..errors import ConfigError, ProviderError, ReplayError, SpellError, UsageError
from ..names import usable_name

if TYPE_CHECKING:
    from ..workspace import Workspace
    from .runtime import Runtime

__all__ = [
    "CLIENT_OPTIONS",
    "CREATE_OPTIONS",
    "NO_PROVIDER_HINT",
    "AgentCalls",
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
#: Keyword arguments for the runtime's :class:`~spellfs.agent.providers.Client` (tests shorten the
#: backoff).
CLIENT_OPTIONS: dict[str, Any] = {}
_AGENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
#: The variables that make :func:`~spellfs.agent.providers.providers_from_config` find a provider
#: when spell.yaml names none (``providers.ENV_KEY``, and ``OPENAI_BASE_URL`` alone for a
#: keyless local server); looked at here, so a script that can have no Agent never imports
#: the provider and call-record code.
_PROVIDER_ENV = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL")
_NOT_REPLAYING = ("", "0", "live", "false", "no")


def run_session(ws: "Workspace") -> str:
    """The automatic session of this run, made on first need and named after the script.

    rs-llmspell records nothing, so its scripts call agents (and run workflows) outside any
    session; here such a call is recorded in one session per run rather than refused.
    """
    sid = ws.__dict__.get("_run_session")
    if sid is None:
        import sys
        from pathlib import Path

        script = Path(ws.run.script).stem if ws.run is not None else "script"
        sid = ws.sessions.create(
            name=usable_name(script, "script"),
            description=f"automatic session of a run of {script}",
            tags=["automatic"],
        )
        ws.__dict__["_run_session"] = sid
        print(
            f"spell: recording outside any session: in automatic session {sid[:8]} ({script})",
            file=sys.stderr,
        )
    return sid


def end_run_session(ws: "Workspace", exit_status: int) -> None:
    """The run is over: its automatic session (if it made one) is completed, or failed, so it
    leaves the live sessions (``max_sessions`` counts them) and, like the run, is a record.
    Its status is set directly: the script's hooks are not run after the script."""
    sid = ws.__dict__.pop("_run_session", None)
    if sid is not None:
        ws.sessions.set_manifest_fields(sid, status="completed" if exit_status == 0 else "failed")


def recording_session(ws: "Workspace") -> str:
    """Where a call or workflow run is recorded: the current session, else ``SPELL_SESSION``
    (as ``spell run`` in a session and ``spell replay`` set it), else the run's automatic one."""
    return ws.current_session or (os.environ.get("SPELL_SESSION") or "").strip() or run_session(ws)


def run_recorder(rt: "Runtime", ws: "Workspace") -> Any:
    """The runtime's :class:`~spellfs.agent.recorder.Recorder`, made on first need: agents and
    the ``web_search`` tool share it, so their calls are numbered and recorded in one order."""
    rec = rt.__dict__.get("recorder")
    if rec is None:
        from ..agent import Recorder

        rec = rt.__dict__["recorder"] = Recorder(ws)
    return rec


def _replay_mode(environ: Any) -> str:
    return (environ.get("SPELL_REPLAY") or "").strip().lower()


class AgentCalls:
    """What one runtime's agents share: providers, the HTTP client, the cache, and the run's
    :class:`~spellfs.agent.recorder.Recorder` (replay mode, call logs, record order), which
    the ``web_search`` tool shares."""

    def __init__(
        self, ws: "Workspace", providers: dict, environ: Any = os.environ, recorder: Any = None
    ) -> None:
        from ..agent import Recorder

        self.ws = ws
        self.providers = providers
        self.environ = environ
        self.rec = recorder if recorder is not None else Recorder(ws, environ)
        self.replaying = self.rec.replaying
        mode = self.rec.mode
        self.cache = bool(ws.config.get("agents.cache")) and not self.replaying and mode != "live"
        self.timeout = float(ws.config.get("agents.timeout_seconds"))
        self.agents: list[dict] = []
        self._client: Any = None

    def pool(self) -> list[dict]:
        """The replayed run's own call records (``$SPELL_REPLAY_CALLS``); empty when not set."""
        return self.rec.pool()

    @property
    def client(self) -> Any:
        if self._client is None:
            from ..agent import Client

            self._client = Client(environ=self.environ, **CLIENT_OPTIONS)
            weakref.finalize(self, self._client.close)
        return self._client

    def log(self, dir: str):
        return self.rec.log(dir)

    def sources(self, dir: str) -> list[str]:
        return self.rec.sources(dir)

    def recorded_kind(self, provider: str, dir: str | None) -> str | None:
        """The kind a provider had in the recordings (a replay without the provider configured)."""
        for rec in self.pool():
            if rec.get("provider") == provider and rec.get("kind") in ("openai", "anthropic"):
                return rec["kind"]
        dirs = self.sources(dir) if dir else []
        for d in dirs:
            for rec in self.log(d).records:
                if rec.get("provider") == provider and rec.get("kind") in ("openai", "anthropic"):
                    return rec["kind"]
        return None

    def has_recordings(self) -> bool:
        return self.rec.has_recordings()

    # -- one call ------------------------------------------------------------------------
    def invoke(self, agent: dict, request: dict) -> dict:
        run, finish = self.prepare(agent, request)
        return finish(run())

    def prepare(self, agent: dict, request: dict) -> tuple[Any, Any]:
        """``(run, finish)`` for one call: ``run()`` is the network part and may run on another
        thread (workflow parallel steps); ``finish(answer)`` records it, on the script's thread."""
        from ..agent import cache_get, cache_put, check_room, record_call
        from ..agent import normalize_request, request_hash

        ws = self.ws
        provider = agent["provider"]
        req = normalize_request(request)
        h = request_hash(provider.kind, req)
        dir = ws.sessions.resolve(agent["session_id"] or self._default_session())
        check_room(ws, dir)
        log = self.log(dir)
        label = f"agent {agent['name']}"
        number = self.rec.number(dir, agent["name"])
        known: dict[str, Any] = {"response": None, "latency": None}
        if self.replaying:
            known["answer"], known["response"] = self._recorded(agent, dir, log, h, req, number)
            known["source"] = "replay"
        else:
            cached = cache_get(ws, h) if self.cache else None
            if cached is not None:
                known.update(answer=cached, source="cache")

        ticket = self.rec.ticket()

        def run() -> dict:
            if "answer" in known:
                return known["answer"]
            started = time.perf_counter()
            try:
                if provider.kind == "mock":  # local and deterministic (spellfs.agent.mock)
                    from ..agent.mock import answer as mock_answer

                    answer = mock_answer(req)
                else:
                    answer = self.client.complete(provider, req, self.timeout)
            except BaseException as exc:
                self.rec.abandon(ticket)  # a failed call records nothing
                if isinstance(exc, ProviderError):
                    raise ProviderError(f"{label}: {exc}") from None
                raise
            known["latency"] = (time.perf_counter() - started) * 1000
            return answer

        def record(answer: dict) -> None:
            source = known.get("source", "live")
            rec = record_call(
                ws,
                dir,
                log,
                agent=agent["name"],
                number=number,
                provider=provider.name,
                kind=provider.kind,
                request=req,
                answer=answer,
                request_hash=h,
                source=source,
                latency_ms=known["latency"],
                response=known["response"],
            )
            if self.cache and source == "live":
                cache_put(ws, h, rec["response"])

        def finish(answer: dict) -> dict:
            self.rec.done(ticket, lambda: record(answer))
            return answer

        return run, finish

    def flush(self, everything: bool = False) -> None:
        """Record the answered calls whose earlier calls are recorded (see the Recorder)."""
        self.rec.flush(everything)

    def _recorded(
        self, agent: dict, dir: str, log: Any, h: str, req: dict, number: int
    ) -> tuple[dict, bytes]:
        """The recorded answer to this call, and its response artifact's bytes."""
        from ..agent import read_answer

        rec = self.rec.lookup(agent["name"], dir, h, number)
        if rec is not None:
            return read_answer(self.ws, rec)
        provider = agent["provider"]
        where = (
            "among the calls the recorded run made"
            if self.rec.pooled()
            else f"in session {dir} or the session it was forked from"
        )
        raise ReplayError(
            f"agent {agent['name']}: no recorded answer for this call "
            f"({provider.name}/{req['model']}, request {h[:12]}) {where}; "
            "a replay never calls a model (use `spell replay --live` to call it)"
        )

    def _default_session(self) -> str:
        current = self.ws.current_session
        if current:
            return current
        env = (self.environ.get("SPELL_SESSION") or "").strip()
        if env:
            return env
        return run_session(self.ws)


def _default_provider(calls: AgentCalls) -> str:
    """rs-llmspell's default for a bare model name: the first configured provider, else openai."""
    configured = calls.ws.config.get("agents.providers")
    if isinstance(configured, dict) and configured:
        return next(iter(configured))
    if "openai" in calls.providers or not calls.providers:
        return "openai"
    return next(iter(calls.providers))


def _resolve_provider(calls: AgentCalls, opts: dict, session_dir: str | None):
    from ..agent import Provider

    model = opts.get("model")
    if not isinstance(model, str) or not model.strip():
        raise UsageError(
            'Agent.create: model is required ("provider/model", e.g. "openai/gpt-4o-mini")'
        )
    name = opts.get("provider")
    if name is None:
        if "/" in model:
            name, model = model.split("/", 1)
        else:
            name = _default_provider(calls)
    if not isinstance(name, str) or not model:
        raise UsageError('Agent.create: model must be "provider/model"')
    provider = calls.providers.get(name)
    if provider is None and name == "mock":  # rs-llmspell's mock/test: see spellfs.agent.mock
        provider = Provider("mock", "mock", "local:mock")
    if provider is None:
        kind = calls.recorded_kind(name, session_dir) if calls.replaying else None
        if kind is None:
            raise ConfigError(
                f"Agent.create: provider not configured: {name} (configured: "
                f"{', '.join(sorted(calls.providers)) or 'none'}; add it under agents.providers "
                "in spell.yaml)"
            )
        provider = Provider(name, kind, "http://replay.invalid")  # answered from records only
    base_url = opts.get("base_url")
    if base_url is not None:
        if not isinstance(base_url, str) or not re.match(r"https?://[^/\s]+", base_url):
            raise UsageError("Agent.create: base_url must be an http:// or https:// URL")
        provider = dataclasses.replace(provider, base_url=base_url.rstrip("/"))
    return provider, model


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
                session_dir = ws.sessions.resolve(calls._default_session())
            except SpellError:
                session_dir = None
        provider, model = _resolve_provider(calls, o, session_dir)
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
            messages = _messages(rt, name, input)
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
            return out(_shown(call(input)))

        def invoke_stream(_self: Any = None, input: Any = None, callback: Any = None) -> Any:
            answer = call(input)  # one chunk: the whole answer (providers are not streamed here)
            if rt.lua_type(callback) == "function":
                rt.call(callback, out(answer.get("text", "")))
            return out(_shown(answer))

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


def _messages(rt: "Runtime", agent: str, input: Any) -> list:
    where = f"agent {agent}: invoke"
    if isinstance(input, (bytes, str)):
        return [{"role": "user", "content": rt.text(input, f"{where}: text")}]
    data = None
    if rt.lua_type(input) == "table":  # callbacks (rs-llmspell's on_error, …) are not sent
        data = {
            (k.decode("utf-8", "replace") if isinstance(k, bytes) else k): rt.py(v)
            for k, v in input.items()
            if rt.lua_type(v) not in ("function", "userdata", "thread")
        }
        if data and all(isinstance(k, int) for k in data):
            data = None
    if not isinstance(data, dict):
        raise UsageError(
            f"{where}: expected {{text = ...}} or {{messages = {{...}}}}, got {rt.lua_type(input)}"
        )
    if data.get("messages") is None and any(k in data for k in _TEXT_KEYS):
        return [{"role": "user", "content": _text_of(data, where)}]
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise UsageError(
            f"{where}: expected {{text = ...}} or {{messages = {{{{role=..., content=...}}, ...}}}}"
        )
    return messages


def _shown(answer: dict) -> dict:
    """The answer as scripts see it: rs-llmspell's scripts read ``text`` or ``content``."""
    return {**answer, "content": answer.get("text")} if isinstance(answer, dict) else answer


#: rs-llmspell's spellings of an invocation's text (``prompt`` comes first, then ``text``).
_TEXT_KEYS = ("prompt", "text", "input", "message", "query")


def _text_of(data: dict, where: str) -> str:
    """One user message from rs-llmspell's ``{prompt, text, …}``: the texts, then other fields."""
    parts = []
    for key in _TEXT_KEYS:
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise UsageError(f"{where}: {key} must be a string")
        parts.append(value)
    extra = [
        f"{k}: {v}"
        for k, v in sorted(data.items(), key=lambda kv: str(kv[0]))
        if k not in _TEXT_KEYS and isinstance(v, (str, int, float)) and not isinstance(v, bool)
    ]
    return "\n\n".join(parts + (["\n".join(extra)] if extra else []))


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
