"""``python -m cardreader``: see :mod:`cardreader.cli`."""

import sys

from cardreader.cli import main

sys.exit(main())
