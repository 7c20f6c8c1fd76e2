"""What a command raises when it stops: one line on standard error and an exit status, never a traceback.

The exit statuses of every ``coc`` command:

- 0: done (for ``check``, ``verify``, ``audit`` and ``stack status``: and nothing wrong found);
- 1: it ran and failed, or found what is wrong: a service, Kafka or MongoDB that does not answer or
  answers an error, builds with findings, a document not valid, breaks in the archive;
- 2: it cannot run as given: a mistake on the command line (an unknown option, a missing argument),
  or an input file or setting it names that cannot be read or is not what it must be.
"""

from __future__ import annotations

MAX_ERROR_CHARS = 1_000  # an error line quotes at most this much (a 10 MB field stays in its file)

FAILED = 1
USAGE = 2

EXIT_STATUS = "Exit status: 0 done, 1 failed, 2 bad command line or input."


class CommandError(Exception):
    """The command ran and failed (a service answered an error, a broker did not answer): exit status 1."""

    exit_code = FAILED


class BadInput(CommandError):
    """The command cannot run as given: an argument, an input file or a setting is wrong. Exit status 2."""

    exit_code = USAGE


def short(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """One line, at most ``limit`` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
