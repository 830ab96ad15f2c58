"""``python -m lockctl``: see :mod:`lockctl.cli`."""

import sys

from lockctl.cli import main

sys.exit(main())
