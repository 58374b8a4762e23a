"""Evaluation: the AdversarialEvaluator (Lightning glue, evaluator.py), per-image records and
the worst case (records.py), sanity checks (sanity.py), the result JSON and its keys
(result.py, torch-free), classifier loading (classifier.py) and any model from outside
(external.py).

No eager imports: the report reads results through `robust_ssl.evaluation.result` without
importing torch.
"""
