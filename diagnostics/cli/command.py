"""The one place the commands turn the package's errors into what the user sees.

Every command is a `Command` (the group's commands by default, `diag check` and `diag sweep`
by `cls=`): a DiagnosticsError raised anywhere below it -- a bad case, sweep or weight file,
a document that cannot be read, a folder that is not this tool's, a missing optional
dependency -- becomes its lines on stderr, each as "error: ...", and exit 2 (errors.fail).
"""
from __future__ import annotations

import click

from ..errors import DiagnosticsError, fail


class Command(click.Command):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except DiagnosticsError as e:
            fail(e.lines)


class Group(click.Group):
    command_class = Command
