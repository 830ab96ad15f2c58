"""The exception tree of the shared contracts."""

from __future__ import annotations

from foundation.errors import ProductError


class ContractError(ProductError):
    """A message that does not follow one of the shared contracts."""
