"""Imported by the trial forkserver after the rest of :data:`~._trial_proc.PRELOAD`: its import
runs :func:`~._trial_proc.warm_trial_imports` in the server (a forkserver preloads modules by
name only), so that forked trials inherit the work instead of each repeating it."""

from aurora_mlops.tuning.local._trial_proc import warm_trial_imports

warm_trial_imports()
