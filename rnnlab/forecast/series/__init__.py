"""The series and what the networks model of them: reading a CSV (``data``, ``date_columns``),
dates and frequencies (``dates``, ``calendar``), the targets (``targets``: level, diff, logreturn,
sdiff, deseason), covariates (``covariates``) and the horizons a series allows (``horizons``).
"""
