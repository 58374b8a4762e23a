"""Reports built only from results: the entries and the paper's numbers (results.py), the
tables and their charts (tables.py), the budget curve (curve.py); `python -m robust_ssl.report`.
"""
