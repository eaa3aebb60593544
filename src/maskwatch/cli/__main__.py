"""``python -m maskwatch.cli``: the same command line as ``maskwatch`` (``serve/local.py`` starts servers so)."""

from maskwatch.cli import main

if __name__ == "__main__":
    main()
