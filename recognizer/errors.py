"""User-facing errors: one clear line on stderr and exit status 2, no traceback."""
import sys


class UserError(Exception):
    """A problem the user can fix (bad flag, bad list file, missing weights).

    The message should say which file/line, what is wrong and how to fix it.
    """


EXIT_USER_ERROR = 2


def run_cli(main, argv=None):
    """Call ``main(argv)`` and turn a UserError into one stderr line + exit 2."""
    try:
        return main(argv)
    except UserError as err:
        print('error: %s' % err, file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
