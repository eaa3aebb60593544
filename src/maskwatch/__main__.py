"""``python -m maskwatch``: the same command line as ``maskwatch``."""

from maskwatch.cli import main

if __name__ == "__main__":
    main()
