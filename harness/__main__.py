"""``python -m harness``: see :mod:`harness.commands.cli`."""

import sys

from harness.commands.cli import main

sys.exit(main())
