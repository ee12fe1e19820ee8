"""`python -m bench.profiled_serve OUT.txt|- wallet|gateway [--host H --port P]`: mock_wallet.serve under
pyinstrument's Profiler, writing a text report to OUT.txt on exit ("-": no profiler).

Not the pyinstrument CLI: uvicorn re-raises SIGTERM after its graceful shutdown, which kills the CLI
before it writes. Here SIGTERM (also the re-raised one) becomes SystemExit, so the report is written.
"""

from __future__ import annotations

import signal
import sys

from pyinstrument import Profiler


def _exit(signum, frame) -> None:  # noqa: ARG001
    raise SystemExit(0)


def main() -> None:
    out, argv = sys.argv[1], sys.argv[2:]
    signal.signal(signal.SIGTERM, _exit)
    from mock_wallet.serve import main as serve_main

    prof = Profiler(interval=0.001, async_mode="disabled") if out != "-" else None
    if prof is None:
        try:
            serve_main(argv)
        except SystemExit:
            pass
        return
    prof.start()
    try:
        serve_main(argv)
    except SystemExit:
        pass
    finally:
        prof.stop()
        with open(out, "w") as fh:
            fh.write(prof.output_text(unicode=False, color=False))


if __name__ == "__main__":
    main()
