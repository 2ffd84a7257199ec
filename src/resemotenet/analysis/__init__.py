"""What tells how far to trust a model: calibration and risk-coverage (``calibration``), accuracy
under corruptions (``robustness``), per-group metrics (``slices``), the train/test leakage
audit (``audit``) and how sure a measured accuracy is: group-bootstrap intervals, paired
comparisons of two models and the faces a narrower interval needs (``intervals``, numpy only). Analyses score models through ``engine.evaluator``; the engine never imports
them."""
