"""The error contract shared by every command line of the project (`python -m data_prep|search_sim|leser...`,
`scripts/*.py`).

A user error (missing or corrupt file, bad value, bad YAML/JSON, wrong kind of directory, number out of range)
exits 2 with one line on stderr, `error: <message>`, whose message names the file, line or field. Anything else is a
bug and keeps Python's traceback (exit 1). `--debug` anywhere on the command line, or `LESER_DEBUG=1`, shows the
traceback of user errors too.

This module lives in data_prep, the lowest package, so that search_sim, leser and the scripts can all use it without
an import going upwards; higher packages mark their own user-error types by subclassing `UserError`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

DEBUG_FLAG = "--debug"
DEBUG_ENV = "LESER_DEBUG"
USER_ERROR_EXIT = 2  # argparse's own exit code for a bad command line: one code for every input problem


class UserError(Exception):
    """Base (or mixin) of errors the user fixes by changing an input, not the code: run_cli prints one line."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the contract's one-line error instead of the usage block (subparsers inherit the class)."""

    def error(self, message: str):
        self.exit(USER_ERROR_EXIT, f"error: {self.prog}: {message} (see --help)\n")


def int_at_least(minimum: int) -> Callable[[str], int]:
    """argparse `type=` for an integer >= `minimum`; argparse names the option in the error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


def is_user_error(err: BaseException) -> bool:
    """Bad input rather than a bug: ValueError (FormatError, PromptTooLongError, ... and the many checks that
    raise it with a message naming the input), OSError (missing files, permissions, unreachable services), YAML
    syntax errors and every UserError. KeyError, TypeError, IndexError, AttributeError, ... are bugs."""
    if isinstance(err, UserError | ValueError | OSError):
        return True
    yaml = sys.modules.get("yaml")  # a YAMLError can only exist once yaml is imported; never import it here
    return yaml is not None and isinstance(err, yaml.YAMLError)


def one_line(err: BaseException) -> str:
    """The error's message on one line (YAML and JSON errors span several)."""
    if isinstance(err, OSError) and err.filename is not None:
        # "[Errno 2] No such file or directory: 'x'" -> "x: No such file or directory", path first as elsewhere
        text = f"{err.filename}: {err.strerror or err}"
        if err.filename2 is not None:
            text += f" ({err.filename2})"
    else:
        text = str(err) or type(err).__name__
    return " ".join(text.split())


def yaml_problem(err: Exception) -> str:
    """Where and what of a YAML syntax error, "line L, column C: problem"; PyYAML's own text names the stream
    ("<unicode string>") rather than the file and spans several lines, so loaders put the path in front of this."""
    mark, problem = getattr(err, "problem_mark", None), getattr(err, "problem", None)
    if mark is None or not problem:
        return " ".join(str(err).split())
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"


def debug_requested(argv: Sequence[str]) -> bool:
    return DEBUG_FLAG in argv or os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")


def run_cli(main: Callable[[list[str]], int | None], argv: Sequence[str] | None = None) -> int:
    """Run `main(argv)` under the error contract; returns the exit code for sys.exit.

    `--debug` is removed from argv before `main` sees it, so no parser has to declare it.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = debug_requested(argv)
    argv = [a for a in argv if a != DEBUG_FLAG]
    try:
        code = main(argv)
    except Exception as err:
        if debug or not is_user_error(err):
            raise
        sys.stdout.flush()  # what the command printed before failing comes before the error line
        print(f"error: {one_line(err)}", file=sys.stderr)
        return USER_ERROR_EXIT
    return 0 if code is None else int(code)
