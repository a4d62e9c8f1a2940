"""What ``rnnlab forecast`` measures: the chronological split, fit and score (``pipeline``),
the baselines (``baselines``, ``classical``), many series (``panel``), the summaries of a
report (``summaries``) and the future after a backtest (``future``, ``predict_covariates``).
"""
