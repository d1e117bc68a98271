"""`python -m wirebridge`: the same command as the `wirebridge` console script."""

from .cli import main

if __name__ == "__main__":
    main(prog_name="wirebridge")
