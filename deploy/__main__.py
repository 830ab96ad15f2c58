"""``python -m deploy``: placeholder entry point until its issue lands."""

import argparse
import sys

import deploy


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy", description=deploy.__doc__)
    parser.parse_args()
    parser.print_help()
    return 0


sys.exit(main())
