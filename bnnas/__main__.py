"""``python -m bnnas <command>``: the same as the ``bnnas`` console script."""

import sys

from bnnas.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
