"""`datadiet` and `python -m datadiet`: the stop handler first, then the (slow) imports and the command.

A stop at any moment of a job's life, its imports included, ends it with one line and exit code 130,
and the same command then resumes. Only before this module's first line (the interpreter's own
start, before the job has done anything) does a stop still kill the process outright.
"""

import os
import sys

from .runtime import stop


def main(argv=None):
    stop.install()
    argv = sys.argv[1:] if argv is None else argv
    try:
        stop.point("imports")
        from .tools import cli

        cli.main(argv)
    except BaseException:
        # Stopped, or a step that failed because the job was being stopped inside it.
        if stop.received() is None or os.environ.get("DATADIET_TRACEBACK"):
            raise
        command = " ".join(argv[:2] if argv[:1] == ["job"] else argv[:1])
        print(
            f"datadiet {command}: stopped by signal {stop.received()}; the same command resumes from the "
            "last saved state",
            file=sys.stderr,
            flush=True,
        )
        sys.exit(130)
    stop.done()


if __name__ == "__main__":
    main()
