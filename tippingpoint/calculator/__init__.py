"""The energy-and-cost calculator: pure functions from reports and profiles to a CostResult."""

from tippingpoint.calculator.compute import calculate
from tippingpoint.calculator.inputs import Profiles
from tippingpoint.calculator.result import COST_SCHEMA_VERSION, CostResult

__all__ = ["COST_SCHEMA_VERSION", "CostResult", "Profiles", "calculate"]
