"""``python -m central``: placeholder entry point until its issue lands."""

import argparse
import sys

import central


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m central", description=central.__doc__)
    parser.parse_args()
    parser.print_help()
    return 0


sys.exit(main())
