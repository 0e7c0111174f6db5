"""Research at scale: parameter sweeps and walk-forward runs of the deterministic backtest, on Ray.

``mmkit sweep SWEEP.yml`` (:mod:`mmkit.research.command`) reads a sweep file
(:mod:`~mmkit.research.spec`), checks every parameter against the config
classes (:mod:`~mmkit.research.space`), runs each trial -- the backtest
``mmkit backtest`` runs (:mod:`~mmkit.research.trial`) -- as a Ray task
(:mod:`~mmkit.research.executor`) under a grid, Optuna or walk-forward search
(:mod:`~mmkit.research.search`), keeps every trial under the hash of its
inputs (:mod:`~mmkit.research.store`), and writes a table
(:mod:`~mmkit.research.table`) and a comparison page (:mod:`~mmkit.research.page`).
See docs/research.md.
"""
