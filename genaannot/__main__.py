"""``python -m genaannot``: the same as the ``genaannot`` command."""

from .cli import main

if __name__ == "__main__":
    main(prog_name="genaannot")
