"""Workspace configuration: ``spell.yaml``, or an llmspell-style TOML via ``spell -c``.

Every key is optional; the defaults are SPEC §1's. An unknown key or a value of
the wrong kind is a :class:`ConfigError` naming the file and the dotted key, so a
typo never silently falls back to a default.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = ["Config", "DEFAULTS", "MACHINE_TOOLS", "PROVIDER_HINT", "load_config"]

_POSITIVE = "a positive integer"

#: How to give scripts a model provider: said wherever one is missing.
PROVIDER_HINT = (
    "set OPENAI_API_KEY, ANTHROPIC_API_KEY or OPENAI_BASE_URL for a local server, "
    "or add agents.providers to spell.yaml"
)

DEFAULTS: dict[str, dict[str, Any]] = {
    "sessions": {
        "max_sessions": 100,
        "max_artifacts_per_session": 1000,
        "artifact_compression_threshold": 10240,
        "session_timeout_seconds": 3600,
        "storage_backend": "fs",
        "max_artifact_size": 104857600,
        "max_import_bytes": 10737418240,
    },
    "watch": {"materialize_max_bytes": 104857600},
    "git": {"max_object_bytes": 52428800},
    "agents": {"providers": None, "cache": False, "timeout_seconds": 120},
    "tools": {"allow": [], "web_search": None},
}
#: The tools that reach the network or the host: off unless ``tools.allow`` names them.
MACHINE_TOOLS = frozenset(
    {
        "web_search",
        "http_request",
        "graphql_query",
        "api_tester",
        "webhook_caller",
        "web_scraper",
        "webpage_monitor",
        "sitemap_crawler",
        "email_sender",
        "process_executor",
        "system_monitor",
        "service_checker",
        "environment_reader",
    }
)
BACKENDS = {"fs": "fs", "sled": "fs", "memory": "memory"}
# llmspell TOML keys that mean nothing here but are not mistakes.
_TOML_IGNORED = {
    "enabled",
    "storage_path",
    "auto_persist",
    "persistence_interval_secs",
    "enable_replay",
    "enable_hooks",
    "hook_timeout_ms",
    "replay_enabled",
}


def _check(where: str, dotted: str, value: Any) -> Any:
    section, key = dotted.split(".")
    default = DEFAULTS[section][key]
    if key == "storage_backend":
        if value not in BACKENDS:
            raise ConfigError(f"{where}: {dotted}: must be one of fs, memory, sled (got {value!r})")
        return BACKENDS[value]
    if section == "tools":
        return _check_tools(where, dotted, value)
    if key == "providers":
        if value is not None and not isinstance(value, dict):
            raise ConfigError(f"{where}: {dotted}: must be a mapping of provider name to settings")
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: {dotted}: must be true or false (got {value!r})")
        return value
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < 0
        or (value == 0 and key != "artifact_compression_threshold")
    ):
        raise ConfigError(f"{where}: {dotted}: must be {_POSITIVE} (got {value!r})")
    return value


def _check_tools(where: str, dotted: str, value: Any) -> Any:
    """``tools.allow``: names of machine tools to enable; ``tools.web_search``: its provider."""
    if dotted == "tools.allow":
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: {dotted}: must be a list of tool names")
        for name in value:
            if name not in MACHINE_TOOLS:
                raise ConfigError(
                    f"{where}: {dotted}: {name!r} is not a tool that needs enabling "
                    f"(those are: {', '.join(sorted(MACHINE_TOOLS))})"
                )
        return list(value)
    if value is not None and (
        not isinstance(value, dict) or value.get("provider") not in ("searxng", "brave")
    ):
        raise ConfigError(f"{where}: {dotted}: must be {{provider: searxng|brave, url, key_env}}")
    return value


@dataclass
class Config:
    """Settings in force for one workspace."""

    values: dict[str, dict[str, Any]] = field(default_factory=lambda: copy.deepcopy(DEFAULTS))
    remotes: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str = "defaults"

    def get(self, dotted: str) -> Any:
        section, key = dotted.split(".")
        return self.values[section][key]

    def set(self, dotted: str, value: Any, where: str = "config") -> None:
        section, _, key = dotted.partition(".")
        if section not in DEFAULTS or key not in DEFAULTS[section]:
            raise ConfigError(
                f"{where}: {dotted}: unknown key (known: {', '.join(sorted(_all_keys()))})"
            )
        self.values[section][key] = _check(where, dotted, value)

    # Shorthands for the hot paths.
    @property
    def threshold(self) -> int:
        return self.values["sessions"]["artifact_compression_threshold"]

    @property
    def backend(self) -> str:
        return self.values["sessions"]["storage_backend"]


def _all_keys() -> list[str]:
    return [f"{s}.{k}" for s, keys in DEFAULTS.items() for k in keys] + ["remotes"]


def apply_mapping(config: Config, doc: Any, where: str) -> None:
    """Apply a ``spell.yaml`` document to ``config``."""
    if doc is None:
        return
    if not isinstance(doc, dict):
        raise ConfigError(
            f"{where}: expected a mapping of sections (sessions:, watch:, git:, remotes:, agents:)"
        )
    for section, body in doc.items():
        if section == "remotes":
            if body is None:
                continue
            if not isinstance(body, dict):
                raise ConfigError(
                    f"{where}: remotes: must be a mapping of name to {{url, endpoint_url, region}}"
                )
            for name, spec in body.items():
                if not isinstance(spec, dict) or not isinstance(spec.get("url"), str):
                    raise ConfigError(f"{where}: remotes.{name}: needs a url")
                unknown = set(spec) - {"url", "endpoint_url", "region"}
                if unknown:
                    raise ConfigError(f"{where}: remotes.{name}.{sorted(unknown)[0]}: unknown key")
            config.remotes = dict(body)
            continue
        if section not in DEFAULTS:
            raise ConfigError(
                f"{where}: {section}: unknown section (known: sessions, watch, git, remotes, "
                "agents, tools)"
            )
        if body is None:
            continue
        if not isinstance(body, dict):
            raise ConfigError(f"{where}: {section}: must be a mapping")
        for key, value in body.items():
            config.set(f"{section}.{key}", value, where)
        if section == "agents" and body.get("providers") is not None:
            from .agent import providers_from_config

            providers_from_config(
                body, Path(".")
            )  # a bad provider is a bad configuration: named now, exit 2


def load_config(root: Path | None, toml_file: Path | None = None) -> Config:
    """``spell.yaml`` under ``root`` (if any), then the TOML file's ``[runtime.sessions]``."""
    config = Config()
    if root is not None:
        path = root / "spell.yaml"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            data = None
        if data is not None:
            # A spell.yaml of comments only (as `spell init` writes it) needs no YAML parser.
            if any(ln.strip() and not ln.lstrip().startswith(b"#") for ln in data.splitlines()):
                from .errors import ManifestError
                from .store import load_yaml

                try:
                    doc = load_yaml(data, "spell.yaml")
                except ManifestError as exc:  # a configuration problem, like a bad key: exit 2
                    raise ConfigError(str(exc)) from None
                apply_mapping(config, doc, "spell.yaml")
            config.source = "spell.yaml"
    if toml_file is not None:
        import tomllib

        where = str(toml_file)
        try:
            doc = tomllib.loads(Path(toml_file).read_text("utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{where}: no such file") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{where}: invalid TOML: {exc}") from None
        except RecursionError:  # tomllib recurses once per nested array or inline table
            raise ConfigError(f"{where}: invalid TOML: nested too deeply (refused)") from None
        runtime = doc.get("runtime", {})
        if not isinstance(runtime, dict):
            raise ConfigError(f"{where}: runtime: must be a table")
        table = runtime.get("sessions", {})
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: runtime.sessions: must be a table")
        for key, value in table.items():
            if key in _TOML_IGNORED:
                continue
            if key not in DEFAULTS["sessions"]:
                raise ConfigError(f"{where}: runtime.sessions.{key}: unknown key")
            config.set(f"sessions.{key}", value, where)
    return config
