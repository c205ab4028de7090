"""``python -m ohws``: the same command line as the ``ohws`` console script."""

import sys

from ._cli import main

sys.exit(main())
