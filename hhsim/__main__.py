"""``python -m hhsim`` and the ``hhsim`` command: Ctrl-C while the command line loads is one
line too (``hhsim.cli.main`` handles it afterwards)."""

import sys


def main() -> int:
    try:
        from hhsim.cli import main as cli_main
    except KeyboardInterrupt:
        print("\nhhsim: interrupted", file=sys.stderr)
        return 130
    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
