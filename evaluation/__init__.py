"""Stage 3 of newsalpha: saved predictions in, backtests, significance tests and the report out.

Never imports torch or newsalpha's model: it reads ``predictions.parquet`` and prices only.
"""
