"""One help style for every command: Rich panels, plain upper-case metavars, the exit-codes footer.

Typer names a value after its Python type (``<str>``, ``<float range>``, ``<list[str]>``) and puts
required arguments in braces (``{model}``); a reader of ``--help`` should see ``TEXT``, ``SECONDS`` or
``MODEL`` instead. :func:`apply_style` gives every registered command the :class:`StyledCommand`
class, so commands added by other modules get the same look without doing anything. Only Typer's
public ``typer.core`` classes are used; parameter types are recognised by their public ``name``.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperOption

from ._app import EXIT_CODES_HELP

__all__ = ["StyledCommand", "apply_style", "type_metavar"]

#: Metavars of options that name none, by the public ``name`` of their parameter type.
_METAVARS = {
    "path": "PATH",
    "file": "FILE",
    "integer": "INTEGER",
    "integer range": "INTEGER",
    "int range": "INTEGER",
    "int": "INTEGER",
    "float": "NUMBER",
    "float range": "NUMBER",
}


class _Unlabeled:
    """An argument's parameter type that converts like the original but adds no type name to help.

    An argument's own name (``MODEL``, ``ID``, ``FILE``) already says what it holds; Typer would put
    the Python type (``<str>``) beside it. Everything but ``get_metavar`` is the original type's.
    """

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __call__(self, value: Any, param: Any = None, ctx: Any = None) -> Any:
        return self._inner(value, param, ctx)

    def get_metavar(self, param: Any, ctx: Any) -> str:
        return ""


def type_metavar(kind: Any) -> str:
    """The metavar of an option that names none: what a person would write for its type."""
    choices = getattr(kind, "choices", None)
    if choices:
        return "|".join(str(choice) for choice in choices)
    return _METAVARS.get(str(getattr(kind, "name", "")), "TEXT")


class StyledCommand(TyperCommand):
    """A Typer command whose help and usage show plain metavars and always end with the exit codes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.epilog is None:
            self.epilog = EXIT_CODES_HELP
        for param in self.params:
            if isinstance(param, TyperArgument):
                if param.metavar is None:
                    param.metavar = (param.name or "value").upper()
                param.type = _Unlabeled(param.type)  # type: ignore[assignment]
            elif isinstance(param, TyperOption) and not param.is_flag and param.metavar is None:
                param.metavar = type_metavar(param.type)

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        """``[OPTIONS] MODEL`` (required) or ``[MODEL]`` (optional), never Typer's ``{model}``."""
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = param.metavar or (param.name or "value").upper()
                if param.nargs != 1:
                    name += "..."
                pieces.append(name if param.required else f"[{name}]")
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces


def apply_style(application: typer.Typer) -> typer.Typer:
    """Give every command that chose no class of its own (Typer fills in its default) the style."""
    for info in application.registered_commands:
        if info.cls is None or info.cls is TyperCommand:
            info.cls = StyledCommand
    return application
