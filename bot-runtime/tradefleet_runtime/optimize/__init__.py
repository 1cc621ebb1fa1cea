"""Parameter search and walk-forward analysis (``tradefleet optimize``, ``tradefleet walkforward``).

``space`` reads the search space, ``worker`` runs one trial (manifest, params, window →
figures), ``search`` drives an Optuna study over a process pool, ``walkforward`` chains searches
on in-sample windows with out-of-sample runs, and ``commands`` holds the CLI entry points.
Optuna is imported only by ``search`` (and so only when a command runs).
"""
