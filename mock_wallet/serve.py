"""Run one service alone: `python -m mock_wallet.serve wallet|gateway [--host H] [--port P]`.

Settings come from the environment (mock_wallet.settings). Without DATABASE_URL the wallet starts an
embedded PostgreSQL in WALLET_DATA_DIR and stops it on exit, so `serve wallet` works on a bare machine.
Logs are JSON lines on stdout.
"""

from __future__ import annotations

import argparse
import logging.config
from collections.abc import Sequence

import uvicorn

from mock_wallet.http_protocol import ProblemHttpToolsProtocol
from mock_wallet.logs import log_config
from mock_wallet.settings import GatewaySettings, WalletSettings


def uvicorn_config(app, host: str, port: int, level: str, keepalive_s: float) -> uvicorn.Config:
    return uvicorn.Config(app, host=host, port=port, log_config=log_config(level), access_log=False,
                          timeout_graceful_shutdown=5, timeout_keep_alive=keepalive_s, lifespan="on",
                          http=ProblemHttpToolsProtocol)


def _serve(app, host: str, port: int, level: str, keepalive_s: float) -> None:
    uvicorn.Server(uvicorn_config(app, host, port, level, keepalive_s)).run()


def serve_wallet(host: str | None, port: int | None) -> None:
    from mock_wallet.app import create_app

    from mock_wallet import defects

    settings = WalletSettings()
    logging.config.dictConfig(log_config(settings.log_level))
    try:
        defects.assemble(defects.parse(settings.bugs))  # refuse before anything starts; create_app plants them
    except defects.BugsRefused as exc:
        logging.getLogger("mock_wallet.serve").error("refusing to start: %s", exc)  # one line, no traceback
        raise SystemExit(2) from None
    embedded = None
    if not settings.database_url:
        from mock_wallet.embedded_pg import EmbeddedPostgres

        embedded = EmbeddedPostgres(settings.data_dir)
        embedded.start()
        settings = settings.model_copy(update={"database_url": embedded.url})
        logging.getLogger("mock_wallet.serve").info("embedded postgres started",
                                                    extra={"data_dir": str(settings.data_dir), "port": embedded.port})
    try:
        _serve(create_app(settings), host or settings.host, port or settings.port, settings.log_level,
               settings.keepalive_s)
    finally:
        if embedded is not None:
            embedded.stop()


def serve_gateway(host: str | None, port: int | None) -> None:
    from mock_wallet.gateway.app import create_gateway_app

    settings = GatewaySettings()
    logging.config.dictConfig(log_config(settings.log_level))
    _serve(create_gateway_app(settings), host or settings.host, port or settings.port, settings.log_level,
           settings.keepalive_s)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mock_wallet.serve", description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["wallet", "gateway"])
    parser.add_argument("--host", default=None, help="default: WALLET_HOST / GATEWAY_HOST")
    parser.add_argument("--port", type=int, default=None, help="default: WALLET_PORT / GATEWAY_PORT")
    args = parser.parse_args(argv)
    (serve_wallet if args.kind == "wallet" else serve_gateway)(args.host, args.port)


if __name__ == "__main__":
    main()
