"""The billing core as plain Python: parsing, window and period math, aggregation, rating, line items.

Nothing here imports pyflink, so every rule is unit-testable without a JVM; `jobs/` wires these functions
into Flink.
"""
