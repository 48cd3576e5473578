"""The built-in tools of the ``Tool`` global, as plain Python (no Lua here).

Every tool's ``execute(params, ctx)`` returns ``{"success": True, "result": {...}}`` or
``{"success": False, "error": "message"}`` and never raises, whatever ``params`` hold.
Result shapes follow rs-llmspell's tools so scripts written for it keep working:

* ``calculator`` ``{operation="evaluate", expression (or input), variables?}`` ->
  ``{operation, expression, result, result_type}`` (``result_type`` is ``integer`` or
  ``float``). Arithmetic only, evaluated from a whitelisted ``ast``: numbers,
  ``+ - * / // % **``, ``^`` (power, always a float, as in Lua), unary ``+ -``,
  parentheses, the functions in :data:`FUNCTIONS`, the constants ``pi e tau`` and
  names given in ``variables``. Integers stay integers where Lua keeps them
  (``+ - * // %``, and ``**`` with a non-negative integer exponent); ``/`` gives a
  float. An integer result outside int64 becomes a float (Lua would wrap around).
  Expressions are limited to 1000 characters, integers to 1024 bits, so nothing
  can hang or exhaust memory. ``operation="validate"`` answers ``{valid, error?}``.
* ``uuid_generator`` ``{operation="generate", version="v4"|"v1"|"v5", namespace,
  name, format="hyphenated"|"simple"|"urn"|"braced"}`` -> ``{uuid, version, format}``.
  v1 uses a random node, never the MAC address.
* ``template_engine`` ``{template (or input), variables (or context)}`` ->
  ``{rendered}``; ``{{name}}``, ``{{ name }}`` and ``{{a.b}}`` are replaced; a missing
  variable is an error.
* ``file_operations`` ``{operation, path, input}`` for ``read`` -> ``{path, content,
  input, size}``, ``write`` -> ``{path, size}``, ``delete`` -> ``{path, deleted}``,
  ``list`` -> ``{path, entries = {{name, type, size}}, count}``, ``exists`` ->
  ``{path, exists}``. ``ctx.root`` is the allowed directory: relative paths resolve
  against it and anything resolving outside it (``..``, absolute paths, symlinks) is
  refused; ``delete`` removes a symlink itself. Writes are atomic (temp file +
  ``os.replace``).
"""

from __future__ import annotations

import ast
import json
import math
import operator
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from spellfs.errors import SpellError, UsageError
from spellfs.store.storage import atomic_replace

__all__ = ["FUNCTIONS", "TOOLS", "Tool"]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    run: Callable[[dict, Any], dict]

    def execute(self, params: Any = None, ctx: Any = None) -> dict:
        """Run the tool; failures come back as ``{"success": False, "error": ...}``."""
        if params is None:
            params = {}
        if not isinstance(params, dict):
            return {"success": False, "error": f"{self.name}: parameters must be a table"}
        try:
            return {"success": True, "result": self.run(params, ctx)}
        except SpellError as e:
            return {"success": False, "error": f"{self.name}: {e}"}
        except OSError as e:
            return {"success": False, "error": f"{self.name}: {e.strerror or e}"}
        except Exception as e:  # the contract: a bad call never raises into the script
            return {"success": False, "error": f"{self.name}: {type(e).__name__}: {e}"}


def _text(params: dict, *names: str, default: str | None = None) -> str:
    for name in names:
        value = params.get(name)
        if isinstance(value, str):
            return value
        if value is not None:
            raise UsageError(f"parameter '{name}' must be a string")
    if default is None:
        raise UsageError(f"missing parameter '{names[0]}'")
    return default


# -- calculator ------------------------------------------------------------------

MAX_EXPRESSION = 1000
MAX_INT_BITS = 1024
MAX_NESTING = 300
CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau}


def _round(number: Any, digits: Any = None) -> Any:
    if digits is None:
        return round(number)
    if type(digits) is not int or abs(digits) > 30:  # 10**huge would never finish
        raise UsageError("round() digits must be an integer between -30 and 30")
    return round(number, digits)


FUNCTIONS: dict[str, Callable] = {
    "abs": abs, "min": min, "max": max, "round": _round, "floor": math.floor,
    "ceil": math.ceil, "sqrt": math.sqrt, "exp": math.exp, "log": math.log,
    "log10": math.log10, "log2": math.log2, "sin": math.sin, "cos": math.cos,
    "tan": math.tan, "asin": math.asin, "acos": math.acos, "atan": math.atan,
    "atan2": math.atan2, "hypot": math.hypot,
    "ln": math.log, "pi": lambda: math.pi, "e": lambda: math.e,  # rs-llmspell's spellings
}
_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
              ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod}
_BINARY = (*_OPERATORS, ast.Pow)


class _Calculation:
    def __init__(self, expression: str, variables: dict):
        text = re.sub(r"\s", " ", expression).strip()
        if len(text) > MAX_EXPRESSION:
            raise UsageError(f"expression too long (more than {MAX_EXPRESSION} characters)")
        if not text.isascii():
            raise UsageError("expression may hold only ASCII characters")
        carets = [m.start() for m in re.finditer(r"\^", text)]
        self.carets = {at + i for i, at in enumerate(carets)}  # where Lua's ^ became **
        self.source = text.replace("^", "**")
        self.names = dict(CONSTANTS)
        for name, value in variables.items():
            if not isinstance(name, str) or type(value) not in (int, float):
                raise UsageError(f"variable {name!r} must be a number")
            self.names[name] = value

    def evaluate(self) -> int | float:
        try:
            tree = ast.parse(self.source, mode="eval")
        except SyntaxError as e:
            raise UsageError(f"invalid expression: {e.msg} at column {e.offset}") from None
        except (RecursionError, MemoryError, ValueError):
            raise UsageError("expression nested too deeply") from None
        try:
            value = self._eval(tree.body, 0)
        except ZeroDivisionError:
            raise UsageError("division by zero") from None
        except OverflowError:
            raise UsageError("numeric overflow") from None
        except ValueError as e:
            raise UsageError(f"math error: {e}") from None
        if isinstance(value, int) and not -(2**63) <= value < 2**63:
            value = float(value)
        if isinstance(value, float) and not math.isfinite(value):
            raise UsageError("result is not a finite number")
        return value

    def _eval(self, node: ast.AST, depth: int) -> Any:
        if depth > MAX_NESTING:
            raise UsageError("expression nested too deeply")
        depth += 1
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return self._check(node.value)
        if isinstance(node, ast.Name):
            if node.id not in self.names:
                raise UsageError(f"unknown name: {node.id}")
            return self.names[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            operand = self._eval(node.operand, depth)
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.BinOp) and isinstance(node.op, _BINARY):
            chain = []  # walk a left-leaning chain (1+2+3+...) without recursing
            while isinstance(node, ast.BinOp) and isinstance(node.op, _BINARY):
                chain.append(node)
                node = node.left
            value = self._eval(node, depth)
            for binop in reversed(chain):
                value = self._binary(binop, value, self._eval(binop.right, depth))
            return value
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            name = node.func.id
            if name not in FUNCTIONS or node.keywords:
                raise UsageError(f"unknown function: {name}")
            args = [self._eval(arg, depth) for arg in node.args]
            try:
                return self._check(FUNCTIONS[name](*args))
            except TypeError:
                raise UsageError(f"wrong arguments for {name}()") from None
        if isinstance(node, ast.Constant):
            raise UsageError(f"not a number: {node.value!r}")
        if isinstance(node, (ast.BinOp, ast.UnaryOp)):
            node = node.op
        raise UsageError(f"not allowed in an expression: {type(node).__name__}")

    def _binary(self, node: ast.BinOp, left: Any, right: Any) -> Any:
        if isinstance(node.op, ast.Pow):
            at = self.source.find("**", node.left.end_col_offset)
            return self._power(left, right, as_float=at in self.carets)
        return self._check(_OPERATORS[type(node.op)](left, right))

    def _power(self, base: Any, exponent: Any, *, as_float: bool) -> Any:
        if as_float:
            base, exponent = float(base), float(exponent)
        elif isinstance(base, int) and isinstance(exponent, int) and exponent > 0:
            if (abs(base).bit_length() - 1) * exponent > MAX_INT_BITS:  # surely too big
                raise UsageError(f"result too large (more than {MAX_INT_BITS} bits)")
        return self._check(base ** exponent)

    @staticmethod
    def _check(value: Any) -> Any:
        if isinstance(value, complex):
            raise UsageError("result is not a real number")
        if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
            raise UsageError(f"result too large (more than {MAX_INT_BITS} bits)")
        return value


def _calculator(params: dict, ctx: Any) -> dict:
    operation = _text(params, "operation", default="evaluate")
    if operation not in ("evaluate", "validate"):
        raise UsageError(f"unknown operation: {operation} (use evaluate or validate)")
    expression = _text(params, "expression", "input")  # rs-llmspell names it input
    variables = params.get("variables") or {}
    if not isinstance(variables, dict):
        raise UsageError("parameter 'variables' must be a table of numbers")
    calculation = _Calculation(expression, variables)
    if operation == "validate":
        try:
            calculation.evaluate()
        except UsageError as e:
            return {"operation": operation, "expression": expression, "valid": False,
                    "error": str(e)}
        return {"operation": operation, "expression": expression, "valid": True}
    value = calculation.evaluate()
    return {"operation": operation, "expression": expression, "result": value,
            "result_type": "integer" if isinstance(value, int) else "float"}


# -- uuid_generator --------------------------------------------------------------

_NAMESPACES = {"dns": uuid.NAMESPACE_DNS, "url": uuid.NAMESPACE_URL,
               "oid": uuid.NAMESPACE_OID, "x500": uuid.NAMESPACE_X500}
_FORMATS = {"standard": str, "hyphenated": str, "simple": lambda u: u.hex,
            "urn": lambda u: u.urn, "braced": lambda u: "{%s}" % u}


def _uuid_generator(params: dict, ctx: Any) -> dict:
    operation = _text(params, "operation", default="generate")
    if operation != "generate":
        raise UsageError(f"unknown operation: {operation} (use generate)")
    version = _text(params, "version", default="v4").lower().removeprefix("v")
    fmt = _text(params, "format", default="hyphenated")
    if fmt not in _FORMATS:
        raise UsageError(f"unknown format: {fmt} (use {', '.join(_FORMATS)})")
    if version == "4":
        made = uuid.uuid4()
    elif version == "1":
        made = uuid.uuid1(node=int.from_bytes(os.urandom(6), "big") | 1 << 40)
    elif version == "5":
        space = _text(params, "namespace", default="dns")
        try:
            namespace = _NAMESPACES.get(space) or uuid.UUID(space)
        except ValueError:
            raise UsageError(f"invalid namespace: {space}") from None
        made = uuid.uuid5(namespace, _text(params, "name"))
    else:
        raise UsageError(f"unknown version: {version} (use v1, v4 or v5)")
    fmt = "hyphenated" if fmt == "standard" else fmt
    return {"uuid": _FORMATS[fmt](made), "version": "v" + version, "format": fmt}


# -- template_engine -------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)\s*\}\}")


def _template_engine(params: dict, ctx: Any) -> dict:
    template = _text(params, "template", "input")
    variables = params.get("variables", params.get("context")) or {}
    if not isinstance(variables, dict):
        raise UsageError("parameter 'variables' must be a table")

    def lookup(match: re.Match) -> str:
        value: Any = variables
        for part in match.group(1).split("."):
            if isinstance(value, dict) and part in value:
                value = value[part]
            elif isinstance(value, list) and part.isdigit() and 0 < int(part) <= len(value):
                value = value[int(part) - 1]  # Lua-style 1-based index
            else:
                raise UsageError(f"missing variable: {match.group(1)}")
        return _render(value)

    return {"rendered": _PLACEHOLDER.sub(lookup, template)}


def _render(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)  # 5.0 stays "5.0", as Lua's tostring
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if value is None:
        return "nil"
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


# -- file_operations -------------------------------------------------------------

def _file_operations(params: dict, ctx: Any) -> dict:
    root = getattr(ctx, "root", None)
    if root is None:
        raise UsageError("no base directory for file operations")
    root = Path(root).resolve()
    operation = _text(params, "operation")
    if operation not in _FILE_OPERATIONS:
        raise UsageError(f"unknown operation: {operation} (use read, write, delete, list or exists)")
    default = "." if operation in ("list", "list_dir") else None
    raw = _text(params, "path", default=default)
    path = (root / raw).resolve()  # an absolute raw path replaces root here
    if not path.is_relative_to(root):
        raise UsageError(f"path outside the allowed directory: {raw}")
    shown = path.relative_to(root).as_posix()
    try:
        return _file_operation(operation, params, root, raw, path, shown)
    except OSError as exc:  # say which path: the system's message names none
        raise UsageError(f"{exc.strerror or exc}: {raw}") from None


_FILE_OPERATIONS = ("read", "write", "delete", "list", "list_dir", "exists")


def _file_operation(operation: str, params: dict, root: Path, raw: str, path: Path, shown: str) -> dict:
    if operation == "read":
        data = path.read_bytes()
        try:
            content: str | bytes = data.decode("utf-8")
        except UnicodeDecodeError:
            content = data
        return {"path": shown, "content": content, "input": content, "size": len(data)}
    if operation == "write":
        text = params.get("input", params.get("content"))
        if not isinstance(text, (str, bytes)):
            raise UsageError("write needs the text in parameter 'input'")
        data = text.encode("utf-8") if isinstance(text, str) else text
        atomic_replace(path, data, fsync=True, mode=0o600)  # 0o600: as tempfile.mkstemp made it
        return {"path": shown, "size": len(data)}
    if operation == "delete":
        if path.is_dir():
            raise UsageError(f"is a directory, not a file: {raw}")
        link = root / raw  # a symlink (into root, as checked above) goes, not its target
        (link if link.is_symlink() else path).unlink()
        return {"path": shown, "deleted": True}
    if operation in ("list", "list_dir"):
        entries = []
        for child in sorted(path.iterdir(), key=lambda p: p.name):
            kind = "symlink" if child.is_symlink() else "directory" if child.is_dir() else "file"
            size = child.lstat().st_size if kind == "file" else 0
            entries.append({"name": child.name, "type": kind, "size": size})
        return {"path": shown, "entries": entries, "count": len(entries)}
    return {"path": shown, "exists": path.exists()}  # exists


TOOLS: dict[str, Tool] = {tool.name: tool for tool in (
    Tool("calculator", "Evaluate arithmetic expressions safely", _calculator),
    Tool("file_operations", "Read, write, delete, list and check files "
         "inside the workspace", _file_operations),
    Tool("template_engine", "Fill {{name}} placeholders in a template", _template_engine),
    Tool("uuid_generator", "Generate UUIDs (v1, v4, v5)", _uuid_generator),
)}
