"""The one error of the price calculator: `PricingError`.

Invariant: the calculator never guesses. Whatever it cannot price exactly — an operator,
rounding mode or variable type the rules language does not have, a variable the model does
not declare, a variable the rules need and nobody gave, a value outside the published range or
enumeration, a model the price list does not know or does not offer — is a `PricingError`
whose message names the culprit (and `name` holds it), never a silent zero.
"""

from __future__ import annotations

from bot.domain.errors import PricingError

__all__ = ["PricingError"]
