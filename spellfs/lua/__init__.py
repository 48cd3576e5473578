"""The Lua 5.4 runtime behind ``spell run``: the globals of SPEC §2 over the library.

:mod:`spellfs.lua.runtime` makes the interpreter and runs a script; each global
lives in its own small module (``session_api``, ``artifact_api``, ``state_api``,
``event_api``, ``hook_api``, ``tool_api``, ``json_api``) as a thin binding over
``Workspace`` — no second implementation. :mod:`spellfs.lua.sandbox` takes file
and process access away for ``spell run --sandbox``.

Nothing is imported here, so ``import spellfs.lua`` costs nothing.
"""
