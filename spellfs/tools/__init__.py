"""The built-in tools of the ``Tool`` global, as plain Python (no Lua here): one module a tool.

Every tool's ``execute(params, ctx)`` returns ``{"success": True, "result": {...}}`` or
``{"success": False, "error": "message"}`` and never raises, whatever ``params`` hold
(:mod:`.base`). Parameter names and result shapes follow rs-llmspell's tools (765a41f)
so its scripts keep working; each module's docstring gives its own.

*Machine* tools (``web_search``, ``http_request``, ``graphql_query``, ``api_tester``,
``webhook_caller``, ``web_scraper``, ``webpage_monitor``, ``sitemap_crawler``,
``email_sender``, ``process_executor``, ``system_monitor``, ``service_checker``,
``environment_reader``) reach the network or the host: they are off unless spell.yaml's
``tools.allow`` names them, and never available under ``--sandbox`` (:func:`available`).
Tools that take paths (``file_operations``, ``archive_handler``, ``hash_calculator``,
``file_watcher``, ``file_converter``, ``file_search``, ``database_connector`` and the media
tools) are confined to the workspace and refuse
spellfs's own files (:func:`.base.confine`).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .base import PROTECTED_TOP, RECORD_FILES, Tool, confine
from .recorded import prepare as prepare_recorded

__all__ = [
    "ALIASES",
    "MACHINE",
    "NAMES",
    "PROTECTED_TOP",
    "RECORD_FILES",
    "TOOLS",
    "Tool",
    "available",
    "canonical",
    "confine",
    "prepare_recorded",
]

#: Every built-in tool, by name; each is the module of the same name.
NAMES = (
    "api_tester",
    "archive_handler",
    "audio_processor",
    "base64_encoder",
    "calculator",
    "csv_analyzer",
    "data_validation",
    "database_connector",
    "date_time_handler",
    "diff_calculator",
    "email_sender",
    "environment_reader",
    "file_converter",
    "file_operations",
    "file_search",
    "file_watcher",
    "graphql_query",
    "hash_calculator",
    "http_request",
    "image_processor",
    "json_processor",
    "process_executor",
    "service_checker",
    "sitemap_crawler",
    "system_monitor",
    "template_engine",
    "text_manipulator",
    "url_analyzer",
    "uuid_generator",
    "video_processor",
    "web_scraper",
    "web_search",
    "webhook_caller",
    "webpage_monitor",
)

TOOLS: dict[str, Tool] = {name: import_module(f"{__name__}.{name}").TOOL for name in NAMES}
MACHINE = frozenset(name for name, tool in TOOLS.items() if tool.machine)
#: rs-llmspell's examples spell some tools with hyphens (``email-sender``); both names work.
ALIASES = {name.replace("_", "-"): name for name in NAMES if "_" in name}


def canonical(name: str) -> str:
    """The tool's name as :data:`TOOLS` has it (``url-analyzer`` -> ``url_analyzer``)."""
    return ALIASES.get(name, name)


def available(name: str, allow: Any, sandbox: bool) -> str | None:
    """None when the tool may run here, else why not (a sentence for the script's error)."""
    tool = TOOLS[name]
    if not tool.machine:
        return None
    if sandbox:
        return f"{name} reaches the network or the host: not available under --sandbox"
    if name not in (allow or ()):
        return f"{name} is off (add it to tools.allow in spell.yaml to enable it)"
    return None


def __getattr__(name: str) -> Any:  # the calculator's function table, as before the split
    if name == "FUNCTIONS":
        return import_module(f"{__name__}.calculator").FUNCTIONS
    raise AttributeError(name)
