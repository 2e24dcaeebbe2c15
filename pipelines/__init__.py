"""Gated retraining pipeline: validate, drift, train, evaluate, fairness, gate, register."""

__version__ = "0.1.0"
