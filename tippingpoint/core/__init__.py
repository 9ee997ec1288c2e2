"""The contract every layer shares.

Value types, the report schema with its reader and writer, errors and pure statistics.

Nothing here imports any other part of tippingpoint.
"""
