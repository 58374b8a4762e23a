"""`python -m robust_ssl.run`, kept for users' scripts: the runner lives in robust_ssl/runs/run.py."""

from robust_ssl.runs.run import main

if __name__ == "__main__":
    main()
