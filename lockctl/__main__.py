"""``python -m lockctl``: placeholder entry point until its issue lands."""

import argparse
import sys

import lockctl


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m lockctl", description=lockctl.__doc__)
    parser.parse_args()
    parser.print_help()
    return 0


sys.exit(main())
