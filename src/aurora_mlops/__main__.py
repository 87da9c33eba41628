"""``python -m aurora_mlops`` runs the CLI."""

import sys

from aurora_mlops.cli import main

sys.exit(main())
