"""The `diag` command (placeholder until the case runner lands)."""
import click

from . import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="diag")
def main():
    """gradient-diagnostics: how gradients vanish or explode in recurrent networks."""


if __name__ == "__main__":
    main()
