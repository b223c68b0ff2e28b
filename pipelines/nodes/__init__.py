"""Pure steps parametrised by a use case: targets, splits, estimators, drift views, prediction tables.

Like ``features/`` and ``models/``, nodes talk to no service; flows feed them data and store results.
"""
