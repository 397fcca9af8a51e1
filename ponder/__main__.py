"""`python -m ponder`: the same as the `ponder` command."""

from ponder.cli import main

if __name__ == "__main__":
    main()
