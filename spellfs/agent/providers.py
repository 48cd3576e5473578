"""Model providers: where a model lives and where its key comes from.

A :class:`Provider` says where a model lives (``kind``, ``base_url``) and where its key
comes from (``key_env`` or ``key_file``); the key itself is read at call time and is
never stored, logged or put in an error message. :func:`providers_from_config` reads
them from the environment and spell.yaml's ``agents.providers``.

Sending a request is :mod:`.client` (HTTP, retries), each kind's body and answer
:mod:`.wire`, the request's normal form and hash :mod:`.request`: configuration is
separate because ``spell.yaml`` is checked (config.py) without sending anything.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..errors import ConfigError, ProviderError

__all__ = [
    "DEFAULT_BASE_URL",
    "ENV_BASE_URL",
    "ENV_KEY",
    "KINDS",
    "Failure",
    "Provider",
    "providers_from_config",
    "workspace_providers",
]

KINDS = ("openai", "anthropic")
DEFAULT_BASE_URL = {"openai": "https://api.openai.com/v1", "anthropic": "https://api.anthropic.com"}
ENV_KEY = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
ENV_BASE_URL = {"openai": "OPENAI_BASE_URL", "anthropic": "ANTHROPIC_BASE_URL"}
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# What an HTTP header can carry as a key: printable ASCII without spaces. Anything else
# (a second line in a key file, a non-ASCII character) fails in the HTTP library with
# an error that quotes the header, key included, or with a UnicodeEncodeError.
_KEY_CHARS = re.compile(r"[\x21-\x7e]+\Z")


@dataclass(frozen=True)
class Provider:
    """Where a model lives and where its key comes from (never the key itself).

    ``key_file`` is absolute; :func:`providers_from_config` resolves a relative one
    against the workspace root.
    """

    name: str
    kind: str  # "openai" | "anthropic"
    base_url: str
    key_env: str | None = None
    key_file: str | None = None

    def api_key(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The key, read now from the environment or the key file; None when none is configured.

        A configured source that yields nothing, or a key no HTTP header can carry, is a
        :class:`ProviderError` (not a 401 later); its message never holds the key.
        """
        try:
            return self.read_key(environ)
        except Failure as f:
            raise ProviderError(f"{self.name}: {f.args[0]}") from None

    def read_key(self, environ: Mapping[str, str] | None) -> str | None:
        env = os.environ if environ is None else environ
        if self.key_env:
            key = (env.get(self.key_env) or "").strip()
            if not key:
                raise Failure(f"no API key: ${self.key_env} is not set")
            return _checked_key(key, f"${self.key_env}")
        if self.key_file:
            try:
                key = Path(self.key_file).expanduser().read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                reason = getattr(exc, "strerror", None) or "not UTF-8 text"
                raise Failure(f"cannot read key file {self.key_file}: {reason}") from None
            if not key:
                raise Failure(f"key file is empty: {self.key_file}")
            return _checked_key(key, f"key file {self.key_file}")
        return None

    def key_hint(self) -> str:
        if self.key_env:
            return f"check ${self.key_env}"
        if self.key_file:
            return f"check the key in {self.key_file}"
        return f"no key configured (set agents.providers.{self.name}.key_env in spell.yaml)"


def _checked_key(key: str, source: str) -> str:
    if not _KEY_CHARS.match(key):
        raise Failure(
            f"the API key in {source} holds spaces, more than one line or non-ASCII characters "
            "(an HTTP header cannot carry it)"
        )
    return key


def providers_from_config(
    agents_cfg: Mapping[str, Any] | None, root: Path, environ: Mapping[str, str] = os.environ
) -> dict[str, Provider]:
    """Providers from the environment, added to or overridden by name by spell.yaml's
    ``agents.providers``: with ``OPENAI_API_KEY`` set and only ``anthropic`` configured,
    both ``openai`` and ``anthropic`` are there.

    From the environment: ``OPENAI_API_KEY`` gives ``openai`` (``OPENAI_BASE_URL``
    overrides the URL; set alone, it gives a keyless ``openai`` for a local server)
    and ``ANTHROPIC_API_KEY`` gives ``anthropic``
    (``ANTHROPIC_BASE_URL``). A configured ``openai`` provider may have no key (local
    servers such as Ollama need none). Bad entries raise :class:`ConfigError` naming
    the key.
    """
    if agents_cfg is not None and not isinstance(agents_cfg, Mapping):
        raise ConfigError("spell.yaml: agents: must be a mapping")
    configured = (agents_cfg or {}).get("providers")
    found = {}
    for kind in KINDS:
        has_key = bool((environ.get(ENV_KEY[kind]) or "").strip())
        base = (environ.get(ENV_BASE_URL[kind]) or "").strip()
        if has_key or (
            base and kind == "openai"
        ):  # a local server (Ollama, llama.cpp) needs no key
            found[kind] = Provider(
                kind,
                kind,
                (base or DEFAULT_BASE_URL[kind]).rstrip("/"),
                key_env=ENV_KEY[kind] if has_key else None,
            )
    if configured is None:
        return found
    if not isinstance(configured, Mapping):
        raise ConfigError("spell.yaml: agents.providers: must be a mapping of name to provider")
    found.update(
        {str(name): _provider_entry(name, entry, Path(root)) for name, entry in configured.items()}
    )
    return found


def workspace_providers(ws: Any) -> dict[str, Provider]:
    """The providers a workspace's scripts get: the environment's, then ``agents.providers``
    in spell.yaml adding to or overriding them by name."""
    return providers_from_config(
        {"providers": ws.config.get("agents.providers")}, ws.root or Path(".")
    )


def _provider_entry(name: Any, entry: Any, root: Path) -> Provider:
    where = f"spell.yaml: agents.providers.{name}"
    if not isinstance(name, str) or not name or "/" in name or name != name.strip():
        raise ConfigError(f"{where}: provider names are words without '/'")
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where}: must be a mapping with kind and base_url")
    unknown = sorted(set(entry) - {"kind", "base_url", "key_env", "key_file"})
    if unknown:
        raise ConfigError(
            f"{where}.{unknown[0]}: unknown key (expected kind, base_url, key_env, key_file)"
        )
    kind = entry.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"{where}.kind: must be openai or anthropic")
    base_url = entry.get("base_url", DEFAULT_BASE_URL[kind])
    if not isinstance(base_url, str) or not re.match(r"https?://[^/\s]+", base_url):
        raise ConfigError(f"{where}.base_url: must be an http:// or https:// URL")
    key_env, key_file = entry.get("key_env"), entry.get("key_file")
    if key_env is not None and key_file is not None:
        raise ConfigError(f"{where}: give key_env or key_file, not both")
    if key_env is not None and not (isinstance(key_env, str) and _ENV_NAME.match(key_env)):
        raise ConfigError(f"{where}.key_env: must be an environment variable name")
    if key_file is not None:
        if not isinstance(key_file, str) or not key_file:
            raise ConfigError(f"{where}.key_file: must be a path")
        path = Path(key_file).expanduser()
        key_file = str(path if path.is_absolute() else root / path)
    if kind == "anthropic" and key_env is None and key_file is None:
        raise ConfigError(f"{where}: anthropic needs key_env or key_file")
    return Provider(name, kind, base_url.rstrip("/"), key_env=key_env, key_file=key_file)


class Failure(Exception):
    """A cause, before provider/model and key scrubbing are added by :meth:`Client.complete`."""
