"""Fold: a segments service for membership and nonprofit CRMs."""

__version__ = "0.1.0"
