"""The estimators: ``Forecaster`` (``model``; its arguments one table, ``params``) and
``Combination`` (``combination``), what they share (``forecasts``), the choice of target and
season (``choice``), the network and its loop (``train``, ``members``, ``pooling``, ``heads``),
sample paths and calibration (``uncertainty``), DataFrames in and forecast tables out
(``frames``, ``rows``), the model files (``storage``), the ONNX graph (``export``) and the
scores (``metrics``: what the choice of targets and every evaluation measure).
"""
