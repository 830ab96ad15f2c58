"""``python -m cardreader``: placeholder entry point until its issue lands."""

import argparse
import sys

import cardreader


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m cardreader", description=cardreader.__doc__)
    parser.parse_args()
    parser.print_help()
    return 0


sys.exit(main())
