"""The `rnnlab translate` subcommands around a trained model: export (ONNX), serve (HTTP),
average (checkpoint averaging); and how every command loads its model (``load_translator``:
one, or the ensemble of several). ``cli.py`` imports this module, never the reverse."""

from __future__ import annotations

import os
import sys

from rnnlab import cliargs
from rnnlab.errors import UserError
from rnnlab.export import need_onnx
from rnnlab.io import check_target_dir
from rnnlab.translate import precision, serve, storage
from rnnlab.translate.ensemble import average, ensemble
from rnnlab.translate.export import FILES, export_translator
from rnnlab.translate.precision import choose as choose_precision
from rnnlab.translate.translator import Translator


def add_parsers(sub) -> None:
    _add_export_parser(sub)
    _add_serve_parser(sub)
    _add_average_parser(sub)


def load_translator(model_dir, precision="float32"):
    """A translator; a list of several directories: their ensemble (``ensemble.py``); decoding
    at ``precision`` where that is faster here (``precision.choose``), else float32."""
    if isinstance(model_dir, list) and len(model_dir) > 1:
        try:
            tr = ensemble([Translator.load(m) for m in model_dir])
        except ValueError as e:
            raise UserError(f"--model: {e}") from None
    else:
        tr = Translator.load(model_dir[0] if isinstance(model_dir, list) else model_dir)
    choose_precision(tr, precision)
    return tr


def _add_export_parser(sub) -> None:
    x = sub.add_parser(
        "export",
        help="write a trained translator as ONNX graphs (encoder, decoder step) + vocabularies",
        description="Write encoder.onnx, decoder_step.onnx and translator.json into DIR; "
        "docs/examples/onnx_translate.py decodes with onnxruntime alone.",
    )
    x.add_argument("--model", metavar="DIR", required=True, help="a directory written by train")
    x.add_argument(
        "--out", metavar="DIR", required=True, type=cliargs.output_dir, help="folder for the three files"
    )
    x.add_argument("--overwrite", action="store_true", help="replace other files of that name in DIR")
    x.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    need_onnx()
    if os.path.isdir(args.out) and not args.overwrite:
        other = sorted(set(os.listdir(args.out)) - set(FILES))
        if other:
            listed = ", ".join(other[:3]) + (", ..." if len(other) > 3 else "")
            raise UserError(
                f"--out {args.out} holds other files ({listed}): "
                "choose an empty or new folder, or pass --overwrite"
            )
    tr = load_translator(args.model)
    paths = export_translator(tr, args.out)
    print(f"rnnlab translate export: {', '.join(paths)}")
    print(f'  decode with: python docs/examples/onnx_translate.py {args.out} "a sentence"')
    return 0


def _add_serve_parser(sub) -> None:
    v = sub.add_parser(
        "serve",
        help="serve a trained translator over HTTP (POST /translate, a web page at /)",
        description='A translation server (FastAPI + uvicorn; pip install "rnnlab[serve]"): '
        "POST /translate, GET /health, a web page with the attention heatmap at /.",
    )
    v.add_argument("--model", required=True, metavar="DIR", help="a directory written by train")
    v.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    v.add_argument("--port", type=cliargs.bounded_int(65535), default=8000, help="port (default: 8000)")
    v.add_argument(
        "--max-batch",
        type=cliargs.bounded_int(1024),
        default=64,
        help="sentences decoded together at most (default 64; 1: one request at a time)",
    )
    v.add_argument(
        "--max-wait-ms",
        type=cliargs.number(float, 0.0, "a number of milliseconds in [0, 1000]", 1000.0),
        default=0.0,
        help="how long the first request of a batch waits for others (default 0: the batch is what "
        "waits when the model is free)",
    )
    v.add_argument(
        "--queue", type=cliargs.bounded_int(10_000), default=64, help="requests waiting at most (default 64)"
    )
    v.add_argument(
        "--timeout",
        type=cliargs.number(float, 0.1, "a number of seconds in [0.1, 3600]", 3600.0),
        default=30.0,
        help="seconds a request may wait for its answer (default 30)",
    )
    v.add_argument(
        "--read-timeout",
        type=cliargs.number(float, 0.1, "a number of seconds in [0.1, 3600]", 3600.0),
        default=10.0,
        help="seconds a client has to send its whole request, else 408 and the connection is "
        "closed (default 10)",
    )
    precision.add_argument(v)
    v.set_defaults(func=cmd_serve)


def cmd_serve(args):
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise UserError('serve needs FastAPI and uvicorn: pip install "rnnlab[serve]"') from None
    _check_port(args.host, args.port)
    app = serve.create_app(
        load_translator(args.model, args.precision),
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        queue_size=args.queue,
        timeout_s=args.timeout,
    )
    if not args.quiet:  # (rnnlab.cli gives every command --quiet)
        url = f"http://{args.host}:{args.port}/"
        print(f"rnnlab translate serve: {url}  (Ctrl-C to stop)", file=sys.stderr, flush=True)
    serve.run(app, args.host, args.port, read_timeout_s=args.read_timeout)
    return 0


def _check_port(host: str, port: int) -> None:
    """One line, before the model loads, when the address cannot be listened on (uvicorn exits
    with status 3 after its own log lines)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise UserError(f"--host {host}: {e.strerror or e}") from None
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            s.bind(addr)
        except OSError as e:
            raise UserError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None


def _add_average_parser(sub) -> None:
    a = sub.add_parser(
        "average",
        help="average the parameters of checkpoints of one run into one model",
        description="Write into --out one translator whose every parameter is the mean of the given "
        "models' (checkpoints of one run: same vocabularies and architecture).",
    )
    a.add_argument("models", nargs="+", metavar="DIR", help="model or checkpoint directories")
    a.add_argument("--out", required=True, metavar="DIR", type=cliargs.output_dir, help="the averaged model")
    a.add_argument("--overwrite", action="store_true", help="replace --out if it holds a translator")
    a.set_defaults(func=cmd_average)


def cmd_average(args):
    if len(args.models) < 2:
        raise UserError("average needs at least two model directories")
    check_target_dir(args.out, storage.is_translator_dir, "--out", "a translator", args.overwrite)
    try:
        avg = average([Translator.load(m) for m in args.models])
    except ValueError as e:
        raise UserError(str(e)) from None
    avg.save(args.out)
    print(f"rnnlab translate average: {len(args.models)} models -> {args.out}")
    return 0
