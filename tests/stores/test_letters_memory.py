"""The in-memory dead-letter store passes the contract."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from langgraph_resilience.stores.letters import InMemoryLetterStore, LetterStore
from tests.stores.letter_contract import LetterStoreContract


class TestInMemoryLetterStore(LetterStoreContract):
    @pytest.fixture
    def store(self) -> Iterator[LetterStore]:
        store = InMemoryLetterStore()
        yield store
        store.close()
