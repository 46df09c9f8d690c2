"""Number types for scenario fields: no booleans, no strings, no inf/nan, no overflow.

Pydantic's lax ints and floats take ``true`` as 1 and ``"10"`` as 10, and floats take
``.inf``; a scenario must not.  These types refuse booleans and strings outright (YAML 1.2
already reads ``1e3`` as a number, so a string here is a quoted number or a typo), refuse
inf and nan, and bound ints to a signed 64-bit value (they end up in numpy and Parquet).
A float that is an exact whole number is accepted where an int is expected (``1e3`` ->
1000); ``1.5`` is not.  The names mirror pydantic's so a module swaps its import only.
"""

from __future__ import annotations

from typing import Annotated, Any

from annotated_types import Ge, Gt, Le
from pydantic import AfterValidator, AllowInfNan, BeforeValidator
from pydantic_core import PydanticCustomError

INT64_MAX = 2**63 - 1


def _no_bool_or_str(kind: str, error_type: str):
    def check(value: Any) -> Any:
        if isinstance(value, (bool, str)):
            what = (f"the boolean {str(value).lower()}" if isinstance(value, bool)
                    else f"the string {value[:40]!r}".replace("{", "(").replace("}", ")"))
            raise PydanticCustomError(error_type, f"expected {kind}, got {what}")
        return value
    return BeforeValidator(check)


Int = Annotated[int, _no_bool_or_str("a whole number", "int_type"), Le(INT64_MAX)]
PositiveInt = Annotated[Int, Gt(0)]
NonNegativeInt = Annotated[Int, Ge(0)]
Float = Annotated[float, _no_bool_or_str("a number", "float_type"), AllowInfNan(False)]
PositiveFloat = Annotated[Float, Gt(0)]
NonNegativeFloat = Annotated[Float, Ge(0)]


def _below_one(p: float) -> float:
    if not p < 1:
        raise ValueError(f"{p} is not a probability below 1 (0 <= loss_rate < 1; 0.01 loses one packet in a hundred)")
    return p


LossRate = Annotated[NonNegativeFloat, AfterValidator(_below_one)]     # a link's loss probability, 0 <= p < 1
