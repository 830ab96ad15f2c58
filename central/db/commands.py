"""``python -m central db upgrade|current|history``: thin adapters over
:mod:`central.db.migrate`. These are the only commands that open a database
at another revision than this version's (docs/central.md, "Upgrading")."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from central.cli_common import open_db
from central.config import CentralConfig
from central.db.migrate import UPGRADE_COMMAND, SchemaState, Status, history


def cmd_db_upgrade(config: CentralConfig, args: argparse.Namespace) -> int:
    with open_db(config, check_schema=False) as db:
        before = db.upgrade_schema()
    if before.status is Status.CURRENT:
        print(f"central database already at revision {before.head}")
    elif before.status is Status.EMPTY:
        print(f"central database created at revision {before.head}")
    elif before.status is Status.LEGACY:
        print("central database of a release before migrations recognised as revision 0001; "
              f"upgraded to {before.head}")  # fmt: skip
    else:
        print(f"central database upgraded from revision {before.revision} to {before.head}")
    return 0


def cmd_db_current(config: CentralConfig, args: argparse.Namespace) -> int:
    with open_db(config, check_schema=False) as db:
        print(describe(db.schema_state()))
    return 0


def describe(state: SchemaState) -> str:
    """One line: the stored revision, and what it means for this version."""
    revision = state.revision or "none"
    if state.status is Status.CURRENT:
        return f"{revision} (head: what this version needs)"
    if state.status is Status.EMPTY:
        return (f"none: empty database; this version creates it at revision {state.head} "
                f"(at its first start, or `{UPGRADE_COMMAND}`)")  # fmt: skip
    return f"{revision} ({state.status.value}): {state.problem()}"


def cmd_db_history(config: CentralConfig, args: argparse.Namespace) -> int:
    with open_db(config, check_schema=False) as db:
        current = db.schema_state().revision
    revisions = history()
    for revision, description in revisions:
        marks = [m for m, on in (("current", revision == current),
                                 ("head", revision == revisions[-1][0])) if on]  # fmt: skip
        suffix = f" ({', '.join(marks)})" if marks else ""
        print(f"{revision}{suffix}  {description}")
    return 0


def add_commands(sub: Any, with_config: Callable[[argparse.ArgumentParser], Any]) -> None:
    p = sub.add_parser("db", help="the database's schema revision (Alembic migrations)")
    dsub = p.add_subparsers(dest="db_command", required=True)
    for name, help_text, func in (
        ("upgrade", "migrate the database to this version's revision (back it up first)",
         cmd_db_upgrade),
        ("current", "the database's revision and whether this version can use it",
         cmd_db_current),
        ("history", "this version's revisions, oldest first", cmd_db_history),
    ):  # fmt: skip
        with_config(dsub.add_parser(name, help=help_text, description=help_text)).set_defaults(
            func=func
        )
