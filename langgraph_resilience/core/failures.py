"""What went wrong, as data: error codes, and errors revived from their stored text.

LangGraph keeps a failed task's exception as its ``repr()`` in the checkpoint, so after
a resume an error handler sees ``"ConnectionError('svc down')"`` instead of the
exception. :func:`revive_error` turns that text back into an exception of the same
class (found by name), so classification by type keeps working across a resume.
"""

from __future__ import annotations

import ast
import builtins
import re

__all__ = ["RecordedError", "error_code", "error_name", "matches_recorded", "revive_error"]

_REPR = re.compile(r"^(?P<name>[A-Za-z_][\w.]*)\((?P<args>.*)\)$", re.DOTALL)
# pydantic's ValidationError has its own repr: "1 validation error for Model\n..."
_PYDANTIC_REPR = re.compile(r"^\d+ validation errors? for ", re.ASCII)

# Most specific first: the first class name found in the error's MRO picks the code.
_CODES: tuple[tuple[str, str], ...] = (
    ("CircuitOpenError", "CIRCUIT_OPEN"),
    ("LoopLimitExceeded", "LOOP_LIMIT"),
    ("AttemptTimeoutError", "TIMEOUT"),
    ("NodeTimeoutError", "TIMEOUT"),
    ("TimeoutError", "TIMEOUT"),
    ("ConnectionError", "CONNECTION"),
    ("ValidationError", "INVALID_OUTPUT"),
    ("ValueError", "INVALID_INPUT"),
    ("TypeError", "INVALID_INPUT"),
)


class RecordedError(Exception):
    """Stands in for an error whose class could not be found or rebuilt from its text.

    Attributes:
        type_name: the original class name (``"ProviderError"``).
        message: the original message, as far as the text gave it.
    """

    def __init__(self, type_name: str, message: str) -> None:
        self.type_name = type_name
        self.message = message
        super().__init__(f"{type_name}: {message}" if message else type_name)

    def __reduce__(self) -> tuple[object, ...]:
        return (RecordedError, (self.type_name, self.message))


def error_code(error: BaseException) -> str:
    """A short, stable code for an error, in the seed's style.

    ``CIRCUIT_OPEN``, ``LOOP_LIMIT``, ``TIMEOUT``, ``CONNECTION``, ``INVALID_OUTPUT``
    (a pydantic ``ValidationError``), ``INVALID_INPUT`` (other ``ValueError`` and
    ``TypeError``), else ``UNEXPECTED_ERROR``.
    """
    names = (
        [error.type_name]
        if isinstance(error, RecordedError)
        else [cls.__name__ for cls in type(error).__mro__]
    )
    for name in names:
        for known, code in _CODES:
            if name == known:
                return code
    return "UNEXPECTED_ERROR"


def error_name(error: BaseException) -> str:
    """The class name of an error, or the original one for a :class:`RecordedError`."""
    return error.type_name if isinstance(error, RecordedError) else type(error).__name__


def revive_error(error: BaseException | str) -> BaseException:
    """Return ``error`` itself, or rebuild an exception from its ``repr()`` text.

    The class is looked up by name among built-in exceptions and the subclasses of
    ``Exception`` imported so far; if none matches, or it cannot be built from the
    message, the result is a :class:`RecordedError` keeping the name and message.

    Example:
        >>> revive_error("ConnectionError('svc down')")
        ConnectionError('svc down')
    """
    if isinstance(error, BaseException):
        return error
    if _PYDANTIC_REPR.match(error):
        return RecordedError("ValidationError", error)
    match = _REPR.match(error.strip())
    if match is None:
        return RecordedError("Exception", error)
    name, message = match["name"], _first_arg(match["args"])
    cls = _find_exception_class(name.rpartition(".")[2])
    if cls is not None:
        try:
            return cls(message)
        except Exception:  # a constructor that takes other arguments
            pass
    return RecordedError(name, message)


def _first_arg(args: str) -> str:
    """The message inside ``Name('message')``; the raw text when it is not a literal."""
    if not args:
        return ""
    try:
        value = ast.literal_eval(args)
    except (ValueError, SyntaxError):
        return args
    if isinstance(value, tuple):
        return str(value[0]) if value else ""
    return str(value)


def _find_exception_class(name: str) -> type[BaseException] | None:
    candidate = getattr(builtins, name, None)
    if isinstance(candidate, type) and issubclass(candidate, BaseException):
        return candidate
    seen: set[type[BaseException]] = set()
    stack: list[type[BaseException]] = [Exception]
    while stack:
        cls = stack.pop()
        if cls.__name__ == name and cls is not Exception:
            return cls
        for sub in cls.__subclasses__():
            if sub not in seen:
                seen.add(sub)
                stack.append(sub)
    return None


def matches_recorded(error: RecordedError, types: tuple[type[BaseException], ...]) -> bool:
    """Whether a revived error whose class could not be rebuilt was one of ``types``.

    Judged by name: the recorded class name is compared with the names of ``types``
    and of all their subclasses imported so far.
    """
    for cls in types:
        if cls in (BaseException, Exception):
            return True
        stack = [cls]
        while stack:
            current = stack.pop()
            if current.__name__ == error.type_name:
                return True
            stack.extend(current.__subclasses__())
    return False
