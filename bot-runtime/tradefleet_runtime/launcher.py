"""The ``tradefleet`` console script: hands an extension command its arguments before anything
heavy is imported, and everything else to the CLI.

``tradefleet fleet stop`` is an emergency tool: its first EmergencyStop must leave within a
fraction of a second, so the CLI's own imports (rich, click, the plugin registry, numpy through
the reports) must not come first. Only the standard library is imported here.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib import metadata

#: Entry-point group of commands other distributions add (the operator adds ``fleet``).
EXTENSION_GROUP = "tradefleet.cli"


def _extension(name: str) -> metadata.EntryPoint | None:
    for point in metadata.entry_points(group=EXTENSION_GROUP, name=name):
        return point
    return None


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments and not arguments[0].startswith("-"):
        point = _extension(arguments[0])
        if point is not None:
            target = point.load()
            # An extension that is a plain ``main(argv) -> int`` runs at once; a click command
            # (or anything else) goes through the CLI, which knows how to call it.
            if callable(target) and not hasattr(target, "make_context"):
                saved = sys.argv
                sys.argv = [f"tradefleet {arguments[0]}", *arguments[1:]]
                try:
                    result = target(arguments[1:])
                except SystemExit as done:  # argparse's --help (0) and usage errors (2)
                    code = done.code
                    return code if isinstance(code, int) else (0 if code is None else 1)
                except KeyboardInterrupt:
                    print("aborted", file=sys.stderr)
                    return 1
                except Exception as error:  # one line, as the CLI tells failures
                    print(f"error: tradefleet {arguments[0]}: {error}", file=sys.stderr)
                    return 1
                finally:
                    sys.argv = saved
                return result if isinstance(result, int) else 0
    from tradefleet_runtime.cli import main as cli_main

    return cli_main(arguments)


if __name__ == "__main__":
    sys.exit(main())
