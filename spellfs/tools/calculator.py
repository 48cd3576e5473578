"""``calculator``: arithmetic from a whitelisted ``ast``, never ``eval``."""

from __future__ import annotations

import ast
import math
import operator
import re
from typing import Any, Callable

from ..errors import UsageError
from .base import Tool, text

__all__ = ["FUNCTIONS", "TOOL"]

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
    "abs": abs,
    "min": min,
    "max": max,
    "round": _round,
    "floor": math.floor,
    "ceil": math.ceil,
    "sqrt": math.sqrt,
    "exp": math.exp,
    "log": math.log,
    "log10": math.log10,
    "log2": math.log2,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "asin": math.asin,
    "acos": math.acos,
    "atan": math.atan,
    "atan2": math.atan2,
    "hypot": math.hypot,
    "ln": math.log,
    "pi": lambda: math.pi,
    "e": lambda: math.e,  # rs-llmspell's spellings
}
_OPERATORS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
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
        return self._check(base**exponent)

    @staticmethod
    def _check(value: Any) -> Any:
        if isinstance(value, complex):
            raise UsageError("result is not a real number")
        if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
            raise UsageError(f"result too large (more than {MAX_INT_BITS} bits)")
        return value


def _calculator(params: dict, ctx: Any) -> dict:
    operation = text(params, "operation", default="evaluate")
    if operation not in ("evaluate", "validate"):
        raise UsageError(f"unknown operation: {operation} (use evaluate or validate)")
    expression = text(params, "expression", "input")  # rs-llmspell names it input
    variables = params.get("variables") or {}
    if not isinstance(variables, dict):
        raise UsageError("parameter 'variables' must be a table of numbers")
    calculation = _Calculation(expression, variables)
    if operation == "validate":
        try:
            calculation.evaluate()
        except UsageError as e:
            return {
                "operation": operation,
                "expression": expression,
                "valid": False,
                "error": str(e),
            }
        return {"operation": operation, "expression": expression, "valid": True}
    value = calculation.evaluate()
    return {
        "operation": operation,
        "expression": expression,
        "result": value,
        "result_type": "integer" if isinstance(value, int) else "float",
    }


TOOL = Tool(
    "calculator",
    "Evaluate arithmetic expressions safely",
    _calculator,
    operations=("evaluate", "validate"),
    parameters={"input": "the expression", "variables": "names and their values"},
)
