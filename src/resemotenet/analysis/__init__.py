"""What tells how far to trust a model: calibration and risk-coverage (``calibration``), accuracy
under corruptions (``robustness``), per-group metrics (``slices``) and the train/test leakage
audit (``audit``). Analyses score models through ``engine.evaluator``; the engine never imports
them."""
