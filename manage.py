#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    if "DEBUG" not in os.environ and "SECRET_KEY" not in os.environ:
        # A checkout with no configuration at all is a developer's: `manage.py makemigrations`
        # and friends work there as in any Django project. A deployment sets SECRET_KEY (the web
        # and worker processes refuse to start without it), so it never takes this path.
        os.environ["DEBUG"] = "true"
        print("manage.py: neither DEBUG nor SECRET_KEY is set; running as a development checkout (DEBUG=true)", file=sys.stderr)
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
