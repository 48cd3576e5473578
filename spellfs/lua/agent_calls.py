"""The model calls of one runtime's agents: providers, where each answer comes from, records.

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

This is separate from the ``Agent`` global (:mod:`.agent_api`), which only checks a
script's options and builds agent tables: a call here is plain Python, so a workflow's
agent steps can run its network part on another thread.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
import weakref
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, ProviderError, ReplayError, UsageError
from .recording import run_session

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["CLIENT_OPTIONS", "AgentCalls", "resolve_provider"]

#: Keyword arguments for the runtime's :class:`~spellfs.agent.client.Client` (tests shorten the
#: backoff).
CLIENT_OPTIONS: dict[str, Any] = {}


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
        dir = ws.sessions.resolve(agent["session_id"] or self.default_session())
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

    def default_session(self) -> str:
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


def resolve_provider(calls: AgentCalls, opts: dict, session_dir: str | None):
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
