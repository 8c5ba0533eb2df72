"""The rules an operator's acknowledgment template follows, checked when the coverage loads.

A team's ``triage.templates[<locale>][<kind>]`` is Jinja2 text that the worker renders
for every acknowledgment (:mod:`triage.acks`). The loader refuses a template here,
with the line of the file, for the same faults the worker would refuse it for and for
those that would let one template stall or exhaust a worker:

* syntax errors; unknown variables; ``first_name`` in a ``public`` template (a public
  reply repeats nothing personal);
* anything beyond plain text, ``{{ expressions }}`` and ``{% if %}``: no loops, macros,
  calls, attribute access, assignments or includes; filters and tests from a short list
  (:data:`FILTERS`, :data:`TESTS`); ``*`` and ``%`` on numbers only, no ``**``. Every
  allowed construct costs time linear in the template's length, whatever the values;
* a source longer than :data:`MAX_SOURCE_CHARS`;
* a text longer than :data:`MAX_CHARS` (whitespace collapsed) for sample values of
  every mode, with and without each optional value; and any error while rendering them.

:func:`template_environment` is the sandbox these renders use (Jinja2's immutable
sandbox, strict undefined, no autoescaping, bounded operators), for the worker to use
as well.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

MAX_CHARS = 640
"""The longest acknowledgment text (whitespace collapsed), within every platform's limit."""
MAX_SOURCE_CHARS = 4000
"""The longest template source."""
TEMPLATE_KINDS = ("dm", "public")
VARIABLES = (
    "team_name", "mode", "reply_within_minutes", "reply_by", "next_open", "staff_name", "evening", "paged",
)
"""The variables of every template; ``dm`` templates also have ``first_name``."""
DM_ONLY = ("first_name",)
FILTERS = frozenset({
    "upper", "lower", "title", "capitalize", "trim", "default", "d", "string", "int", "float",
    "round", "abs", "length", "count", "first", "last", "truncate", "striptags",
})
TESTS = frozenset({
    "none", "defined", "undefined", "number", "string", "boolean", "true", "false",
    "eq", "ne", "lt", "gt", "le", "ge", "==", "!=", "<", ">", "<=", ">=", "odd", "even", "divisibleby",
    "in", "sameas",
})
# Expressions and statements that cost linear time and space: everything else is refused.
_ALLOWED_NODES = (
    nodes.Template, nodes.Output, nodes.TemplateData, nodes.If, nodes.Const, nodes.Name,
    nodes.CondExpr, nodes.And, nodes.Or, nodes.Not, nodes.Neg, nodes.Pos, nodes.Compare, nodes.Operand,
    nodes.Concat, nodes.Add, nodes.Sub, nodes.Mul, nodes.Div, nodes.FloorDiv, nodes.Mod,
    nodes.Filter, nodes.Test, nodes.Tuple, nodes.List, nodes.Getitem, nodes.Slice,
)
_CONSTRUCTS = {
    "For": "loops ({% for %})", "Macro": "macros", "CallBlock": "call blocks", "Call": "function or method calls",
    "Getattr": "attribute access (x.y)", "Assign": "assignments ({% set %})", "AssignBlock": "assignments ({% set %})",
    "With": "{% with %}", "Include": "includes", "Import": "imports", "FromImport": "imports",
    "Extends": "template inheritance", "Block": "blocks", "Pow": "powers (**)", "Dict": "dict literals",
    "FilterBlock": "filter blocks", "ExprStmt": "expression statements", "Scope": "scopes",
}
_RAW_LIMIT = 64 * 1024
_HINT = (
    "use plain text, {{ variable }}, {% if %}/{% elif %}/{% else %} and the filters "
    + ", ".join(sorted(FILTERS - {"d"}))
)
_LONG_MOMENT = "Wednesday 30 September 2026 at 09:00 in the morning"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float))


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox, with ``*`` and ``%`` on numbers only and no ``**``."""

    intercepted_binops = frozenset({"*", "%", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            raise SecurityError("powers (**) are not allowed in acknowledgment templates")
        if not (_is_number(left) and _is_number(right)):
            raise SecurityError(f"'{operator}' works on numbers only in acknowledgment templates")
        return super().call_binop(context, operator, left, right)


def template_environment() -> ImmutableSandboxedEnvironment:
    """The sandbox acknowledgment templates are checked (and should be rendered) in."""
    return _BoundedSandbox(autoescape=False, undefined=StrictUndefined)


def variables_of(kind: str) -> tuple[str, ...]:
    """The variables a template of ``kind`` may use."""
    return VARIABLES + DM_ONLY if kind == "dm" else VARIABLES


def sample_values(kind: str, team_name: str) -> Iterator[Mapping[str, object]]:
    """Values of every variable, for each mode with each optional value absent and present."""
    for mode in ("open", "reduced", "closed"):
        for given in (False, True):
            for paged in (False, True):
                values: dict[str, object] = {
                    "team_name": team_name,
                    "mode": mode,
                    "reply_within_minutes": 1440 if given else 40,
                    "reply_by": _LONG_MOMENT if given else None,
                    "next_open": _LONG_MOMENT if given != paged else None,
                    "staff_name": "Marta" if given or paged else None,
                    "evening": given != paged,
                    "paged": paged,
                }
                if kind == "dm":
                    values["first_name"] = "Ana" if given != paged else None
                yield values


def _walk(template: nodes.Template) -> Iterator[nodes.Node]:
    stack: list[nodes.Node] = [template]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(node.iter_child_nodes())


def _structure_problem(template: nodes.Template, kind: str) -> tuple[str, str] | None:
    known = variables_of(kind)
    for node in _walk(template):
        name = type(node).__name__
        if not isinstance(node, _ALLOWED_NODES):
            return f"acknowledgment templates do not allow {_CONSTRUCTS.get(name, name)}", _HINT
        if isinstance(node, nodes.Filter) and node.name not in FILTERS:
            return f"acknowledgment templates do not allow the filter '{node.name}'", _HINT
        if isinstance(node, nodes.Test) and node.name not in TESTS:
            return f"acknowledgment templates do not allow the test '{node.name}'", _HINT
        if isinstance(node, nodes.Name) and node.name not in known:
            if node.name in DM_ONLY:
                return (f"a public template cannot use '{node.name}' (a public reply repeats nothing personal)",
                        "leave the customer's name out of public templates; use it in 'dm'")
            return f"unknown variable '{node.name}'", f"use one of {', '.join(known)}"
    return None


def _render(template: Any, values: Mapping[str, object]) -> str:
    pieces: list[str] = []
    size = 0
    for piece in template.generate(values):
        size += len(piece)
        if size > _RAW_LIMIT:
            raise OverflowError(f"renders more than {_RAW_LIMIT} characters")
        pieces.append(piece)
    return " ".join("".join(pieces).split())


@functools.lru_cache(maxsize=1024)
def _compiled(source: str, kind: str) -> tuple[Any, tuple[str, str] | None]:
    """The compiled template, or why it is refused before any render (syntax, constructs, length)."""
    if kind not in TEMPLATE_KINDS:
        return None, (f"unknown template kind '{kind}'", "write dm or public")
    if len(source) > MAX_SOURCE_CHARS:
        return None, (f"the template is {len(source)} characters long; at most {MAX_SOURCE_CHARS} are accepted",
                      f"an acknowledgment is at most {MAX_CHARS} characters; shorten the template")
    environment = template_environment()
    try:
        parsed = environment.parse(source)
    except TemplateSyntaxError as error:
        return None, (f"template error: {error.message}", "fix the Jinja2 syntax, e.g. {{ first_name }}")
    except RecursionError:
        return None, ("template error: nested too deeply", "fix the Jinja2 syntax, e.g. {{ first_name }}")
    problem = _structure_problem(parsed, kind)
    if problem is not None:
        return None, problem
    try:
        return environment.from_string(source), None
    except (TemplateError, RecursionError) as error:
        return None, (f"template error: {error}", "fix the Jinja2 syntax, e.g. {{ first_name }}")


def template_problem(source: str, kind: str, team_name: str) -> tuple[str, str] | None:
    """Why the template ``source`` of ``kind`` (dm or public) is refused, as (message, hint); None when fine.

    ``team_name`` is the team's display name; the sample renders use a name of its
    length (what the length check needs), so teams sharing a template share the check.
    """
    return _template_problem(source, kind, len(team_name))


@functools.lru_cache(maxsize=4096)
def _template_problem(source: str, kind: str, name_length: int) -> tuple[str, str] | None:
    team_name = "T" * name_length
    template, problem = _compiled(source, kind)
    if problem is not None:
        return problem
    try:
        for values in sample_values(kind, team_name):
            text = _render(template, values)
            if len(text) > MAX_CHARS:
                return (f"the template renders {len(text)} characters; keep it within {MAX_CHARS}",
                        "shorten the text")
    except (TemplateError, SecurityError, ArithmeticError, TypeError, ValueError, RecursionError) as error:
        return f"the template cannot be rendered ({type(error).__name__}: {error})", _HINT
    return None
