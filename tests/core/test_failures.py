"""error_code, error_name and revive_error: classifying errors, also from their stored text."""

from __future__ import annotations

import asyncio
import copy
import json
import pickle

import pydantic
import pytest

from langgraph_resilience import (
    AttemptTimeoutError,
    CircuitOpenError,
    LoopLimitExceeded,
    ResilienceError,
)
from langgraph_resilience.core.failures import (
    RecordedError,
    error_code,
    error_name,
    revive_error,
)

# Defined at module level so revive_error can find them among Exception's subclasses;
# the names are unusual so no other test module defines a class by the same name.


class LedgerTestsQuotaExhausted(Exception):
    """A user-defined error with the usual one-message constructor."""


class LedgerTestsRegionalQuotaExhausted(LedgerTestsQuotaExhausted):
    """A grandchild of Exception: found by walking the subclass tree."""


class LedgerTestsNeedsTwoArguments(Exception):
    def __init__(self, service: str, status: int) -> None:
        super().__init__(f"{service} answered {status}")


class LedgerTestsHttpStatus(Exception):
    """A constructor that rejects its own message: it takes a bare status code."""

    def __init__(self, status: str) -> None:
        if not status.isdigit():
            raise ValueError(f"not a status code: {status!r}")
        super().__init__(f"HTTP {status}")


class LedgerTestsProviderDown(ConnectionError):
    """A user-defined ConnectionError."""


class _Answer(pydantic.BaseModel):
    confidence: float


def validation_error() -> pydantic.ValidationError:
    try:
        _Answer.model_validate({"confidence": "very"})
    except pydantic.ValidationError as exc:
        return exc
    raise AssertionError("the model accepted an invalid confidence")


def node_timeout_error() -> BaseException:
    from langgraph.errors import NodeTimeoutError

    try:
        return NodeTimeoutError("search", 30.0, kind="run", run_timeout=30.0)  # type: ignore[call-arg]
    except TypeError:  # another LangGraph version's constructor
        pytest.skip("langgraph.errors.NodeTimeoutError cannot be built here")


# -- error_code -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (CircuitOpenError("b", retry_after=1.0), "CIRCUIT_OPEN"),
        (CircuitOpenError("b", retry_after=1.0, state="half_open"), "CIRCUIT_OPEN"),
        (
            LoopLimitExceeded("w", limit="max_depth", count=3, maximum=2, detail="too deep"),
            "LOOP_LIMIT",
        ),
        (AttemptTimeoutError("search", 5.0), "TIMEOUT"),
        (TimeoutError("slow"), "TIMEOUT"),
        (asyncio.TimeoutError(), "TIMEOUT"),
        (ConnectionError("down"), "CONNECTION"),
        (ConnectionRefusedError("refused"), "CONNECTION"),
        (ConnectionResetError("reset"), "CONNECTION"),
        (ConnectionAbortedError("aborted"), "CONNECTION"),
        (BrokenPipeError("pipe"), "CONNECTION"),
        (LedgerTestsProviderDown("provider down"), "CONNECTION"),
        (ValueError("bad"), "INVALID_INPUT"),
        (TypeError("wrong type"), "INVALID_INPUT"),
        (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), "INVALID_INPUT"),
        (json.JSONDecodeError("Expecting value", "", 0), "INVALID_INPUT"),
        (RuntimeError("boom"), "UNEXPECTED_ERROR"),
        (KeyError("missing"), "UNEXPECTED_ERROR"),
        (Exception("plain"), "UNEXPECTED_ERROR"),
        (ResilienceError("base"), "UNEXPECTED_ERROR"),
        (LedgerTestsQuotaExhausted("quota"), "UNEXPECTED_ERROR"),
        (KeyboardInterrupt(), "UNEXPECTED_ERROR"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else value,
)
def test_error_code(error: BaseException, code: str) -> None:
    assert error_code(error) == code


def test_a_pydantic_validation_error_is_invalid_output() -> None:
    error = validation_error()

    assert isinstance(error, ValueError)  # more specific than INVALID_INPUT
    assert error_code(error) == "INVALID_OUTPUT"


def test_langgraph_node_timeout_is_a_timeout() -> None:
    assert error_code(node_timeout_error()) == "TIMEOUT"


def test_a_subclass_takes_its_nearest_known_ancestors_code() -> None:
    class SlowProvider(LedgerTestsProviderDown, TimeoutError):
        pass

    class BreakerStillOpen(CircuitOpenError):
        pass

    # The first known name along the MRO wins.
    assert error_code(SlowProvider("x")) == "CONNECTION"
    assert error_code(BreakerStillOpen("b", retry_after=1.0)) == "CIRCUIT_OPEN"


@pytest.mark.parametrize(
    ("type_name", "code"),
    [
        ("CircuitOpenError", "CIRCUIT_OPEN"),
        ("LoopLimitExceeded", "LOOP_LIMIT"),
        ("AttemptTimeoutError", "TIMEOUT"),
        ("NodeTimeoutError", "TIMEOUT"),
        ("ConnectionError", "CONNECTION"),
        ("ValidationError", "INVALID_OUTPUT"),
        ("ProviderError", "UNEXPECTED_ERROR"),
        ("Exception", "UNEXPECTED_ERROR"),
    ],
)
def test_a_recorded_error_is_classified_by_its_original_name(type_name: str, code: str) -> None:
    assert error_code(RecordedError(type_name, "text")) == code


# -- error_name -----------------------------------------------------------------------------


def test_error_name() -> None:
    assert error_name(ValueError("x")) == "ValueError"
    assert error_name(LedgerTestsRegionalQuotaExhausted("x")) == "LedgerTestsRegionalQuotaExhausted"
    assert error_name(CircuitOpenError("b", retry_after=1.0)) == "CircuitOpenError"
    assert error_name(RecordedError("ProviderError", "down")) == "ProviderError"


# -- revive_error ---------------------------------------------------------------------------


def test_an_exception_passes_through_unchanged() -> None:
    for error in (ValueError("x"), CircuitOpenError("b", retry_after=1.0), RecordedError("A", "")):
        assert revive_error(error) is error


def test_a_builtin_error_is_revived_from_its_repr() -> None:
    revived = revive_error("ConnectionError('svc down')")

    assert type(revived) is ConnectionError
    assert str(revived) == "svc down"
    assert error_code(revived) == "CONNECTION"


def test_surrounding_whitespace_is_ignored() -> None:
    revived = revive_error("  TimeoutError('slow')\n")
    assert type(revived) is TimeoutError
    assert str(revived) == "slow"


def test_a_user_defined_error_is_revived_to_its_class() -> None:
    revived = revive_error("LedgerTestsQuotaExhausted('daily quota used up')")

    assert type(revived) is LedgerTestsQuotaExhausted
    assert str(revived) == "daily quota used up"


def test_a_deeper_subclass_is_found_too() -> None:
    revived = revive_error(repr(LedgerTestsRegionalQuotaExhausted("eu-west quota")))

    assert type(revived) is LedgerTestsRegionalQuotaExhausted
    assert str(revived) == "eu-west quota"
    assert error_code(revive_error(repr(LedgerTestsProviderDown("x")))) == "CONNECTION"


def test_a_qualified_name_is_looked_up_by_its_last_part() -> None:
    revived = revive_error("somewhere.errors.LedgerTestsQuotaExhausted('q')")
    assert type(revived) is LedgerTestsQuotaExhausted
    assert str(revived) == "q"


def test_an_unknown_name_becomes_a_recorded_error() -> None:
    revived = revive_error("LedgerTestsNoSuchError('the provider said no')")

    assert isinstance(revived, RecordedError)
    assert revived.type_name == "LedgerTestsNoSuchError"
    assert revived.message == "the provider said no"
    assert str(revived) == "LedgerTestsNoSuchError: the provider said no"
    assert error_name(revived) == "LedgerTestsNoSuchError"
    assert error_code(revived) == "UNEXPECTED_ERROR"


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (CircuitOpenError("search", retry_after=1.0), "CIRCUIT_OPEN"),
        (AttemptTimeoutError("search", 5.0), "TIMEOUT"),
        (LoopLimitExceeded("w", limit="max_depth", count=3, maximum=2, detail="d"), "LOOP_LIMIT"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else value,
)
def test_a_class_that_cannot_be_rebuilt_keeps_its_name_and_code(
    error: BaseException, code: str
) -> None:
    revived = revive_error(repr(error))

    assert isinstance(revived, RecordedError)
    assert revived.type_name == type(error).__name__
    assert revived.message == str(error)
    assert error_code(revived) == code


def test_a_user_class_with_extra_constructor_arguments_becomes_a_recorded_error() -> None:
    text = repr(LedgerTestsNeedsTwoArguments("billing", 503))

    revived = revive_error(text)

    assert isinstance(revived, RecordedError)
    assert revived.type_name == "LedgerTestsNeedsTwoArguments"
    assert revived.message == "billing answered 503"


def test_a_constructor_that_rejects_the_message_gives_a_recorded_error() -> None:
    revived = revive_error(repr(LedgerTestsHttpStatus("503")))

    assert isinstance(revived, RecordedError)
    assert revived.type_name == "LedgerTestsHttpStatus"
    assert revived.message == "HTTP 503"


@pytest.mark.parametrize(
    "text",
    [
        "something broke",
        "",
        "Traceback (most recent call last):\n  ...",
        "ValueError",
        "ValueError('unclosed'",
    ],
)
def test_text_that_is_not_an_exception_repr_becomes_a_recorded_error(text: str) -> None:
    revived = revive_error(text)

    assert isinstance(revived, RecordedError)
    assert revived.type_name == "Exception"
    assert revived.message == text
    assert error_code(revived) == "UNEXPECTED_ERROR"


@pytest.mark.parametrize(
    "text",
    ["dict({'a': 1})", "print('hello')", "__import__('os').getcwd()", "object('x')"],
)
def test_a_callable_that_is_not_an_exception_is_never_called(text: str) -> None:
    revived = revive_error(text)

    assert isinstance(revived, RecordedError)
    assert revived.type_name == text.partition("(")[0]


def test_a_multi_argument_repr_keeps_the_type_and_the_first_argument() -> None:
    revived = revive_error(repr(ValueError("bad field", "confidence")))
    assert type(revived) is ValueError
    assert str(revived) == "bad field"

    os_error = revive_error("FileNotFoundError(2, 'No such file or directory')")
    assert type(os_error) is FileNotFoundError
    assert str(os_error) == "2"


def test_arguments_that_are_not_literals_are_kept_as_text() -> None:
    revived = revive_error("ValueError(<object object at 0x7f00>)")

    assert type(revived) is ValueError
    assert str(revived) == "<object object at 0x7f00>"


def test_an_exception_without_arguments_is_revived_with_an_empty_message() -> None:
    revived = revive_error("RuntimeError()")

    assert type(revived) is RuntimeError
    assert str(revived) == ""


@pytest.mark.parametrize(
    "error",
    [
        ValueError("bad input"),
        TypeError("expected str, got int"),
        KeyError("missing"),
        ConnectionResetError("peer reset the connection"),
        TimeoutError("too slow"),
        ZeroDivisionError("division by zero"),
        RuntimeError("quotes ' and \" both"),
        ValueError("two\nlines"),
        LedgerTestsQuotaExhausted("unicode: café ☕"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_round_trip_through_repr_keeps_type_message_and_code(error: BaseException) -> None:
    revived = revive_error(repr(error))

    assert type(revived) is type(error)
    assert str(revived) == str(error)
    assert error_code(revived) == error_code(error)


def test_round_trip_keeps_a_pydantic_validation_error_invalid_output() -> None:
    """The module's promise: classification by type keeps working across a resume.

    A pydantic ``ValidationError``'s ``repr()`` is its multi-line message, with no
    class name, so the revived error loses its ``INVALID_OUTPUT`` code.
    """
    error = validation_error()

    revived = revive_error(repr(error))

    assert error_code(revived) == error_code(error) == "INVALID_OUTPUT"


# -- RecordedError --------------------------------------------------------------------------


def test_recorded_error_message_and_args() -> None:
    error = RecordedError("ProviderError", "quota exhausted")
    assert str(error) == "ProviderError: quota exhausted"
    assert isinstance(error, Exception)

    bare = RecordedError("ProviderError", "")
    assert str(bare) == "ProviderError"
    assert bare.message == ""


@pytest.mark.parametrize(
    "clone",
    [lambda e: pickle.loads(pickle.dumps(e)), copy.copy, copy.deepcopy],
    ids=["pickle", "copy", "deepcopy"],
)
@pytest.mark.parametrize("message", ["quota exhausted", ""])
def test_recorded_error_survives_pickle_and_copy(clone: object, message: str) -> None:
    error = RecordedError("ProviderError", message)

    revived = clone(error)  # type: ignore[operator]

    assert type(revived) is RecordedError
    assert revived.type_name == "ProviderError"
    assert revived.message == message
    assert str(revived) == str(error)
    assert error_code(revived) == error_code(error)
