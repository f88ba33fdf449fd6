"""One exception type for everything the user can fix.

The CLI turns a UserError into one line on stderr and exit code 2 (no traceback).
"""


class UserError(Exception):
    """Bad input the user can fix: the message says what is wrong and what to do."""
