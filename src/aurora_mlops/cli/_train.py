"""Handler of ``aurora-mlops train-trial``."""

from __future__ import annotations

import argparse
import logging

from aurora_mlops.variants import get_variant


def cmd_train_trial(args: argparse.Namespace) -> int:
    # Parameters are checked before torch and aurora are imported: a typo fails in a second.
    from aurora_mlops.training._params import describe_params, parse_param_args, resolve_params

    if args.list_params:
        print(describe_params(args.profile))
        return 0
    missing = [f"--{n}" for n in ("variant", "data", "output") if getattr(args, n) is None]
    if missing:
        args.subparser.error(f"the following arguments are required: {', '.join(missing)}")
    params = resolve_params(args.profile, parse_param_args(args.params))
    from aurora_mlops.training import train_trial

    logging.getLogger("aurora_mlops").setLevel(logging.INFO if args.verbose else logging.WARNING)
    result = train_trial(
        variant=get_variant(args.variant),
        data=args.data,
        output_dir=args.output,
        params=params,
        profile=args.profile,
        init=args.init,
        tracking=not args.no_tracking,
        tracking_uri=args.tracking_uri,
    )
    print(f"checkpoint: {result.checkpoint}")
    print(f"trial: {result.trial_json}")
    return 0
