"""Lightning plumbing every stage shares: the CLI runner, exact resumption, epoch lines, the
W&B mode, the optimiser builder and the one atomic file write. Nothing here knows a table.

Kept free of eager imports, so that `robust_ssl.plumbing.files` costs no torch import.
"""
