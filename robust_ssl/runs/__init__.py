"""Orchestration: the experiment grid (grid.py), layered configs (configs.py), run directories
and their fingerprints (rundir.py) and the runner of one cell (run.py).

No eager imports: the grid and the report read grid.py without importing torch.
"""
