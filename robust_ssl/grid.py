"""`python -m robust_ssl.grid`, kept for users' scripts: the grid lives in robust_ssl/runs/grid.py."""

from robust_ssl.runs.grid import main

if __name__ == "__main__":
    main()
