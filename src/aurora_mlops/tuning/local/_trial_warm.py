"""Imported by the trial forkserver after the rest of :data:`~._trial_workers.PRELOAD`: its import
runs :func:`~._trial_workers.warm_trial_imports` in the server (a forkserver preloads modules by
name only), so that forked trials inherit the work instead of each repeating it, and
:func:`~._trial_workers.adopt_runner_main`, so that they do not run the runner's script."""

from aurora_mlops.tuning.local._trial_workers import adopt_runner_main, warm_trial_imports

adopt_runner_main()
warm_trial_imports()
