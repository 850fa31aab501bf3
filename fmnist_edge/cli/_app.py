"""The Typer app every command module registers on, and what all commands share: the consoles, turning
user errors into a message and an exit code, stop signals, `--version`, and the optional-install check."""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import os
import signal
import sys
import threading
from typing import Optional

import typer
from rich.console import Console
from rich.text import Text

from runtime.backends import VERBOSE_ENV

from .. import __version__
from ..errors import FmnistEdgeError, MissingExtraError, signalled, stop_if_signalled



def _version(value: bool) -> None:
    if value:
        print(f"fmnist-edge {__version__}")
        raise typer.Exit()


app = typer.Typer(
    help="Train a Fashion-MNIST classifier, export it for the edge, and prove nothing was lost.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def main(version: Optional[bool] = typer.Option(None, "--version", callback=_version, is_eager=True,
                                                help="Print the version and exit."),
         verbose: bool = typer.Option(False, "--verbose", help="Keep the libraries' own log lines (TensorFlow, "
                                      "the converters, LiteRT), which are hidden by default.")):
    """Train a Fashion-MNIST classifier, export it for the edge, and prove nothing was lost."""
    if verbose:
        os.environ[VERBOSE_ENV] = "1"


# Wide tables stay readable in logs and pipes (rich assumes 80 columns when not on a terminal).
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def user_errors(fn):
    """Turn the project's own errors into a clear message and exit code 1 instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _terminate)
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            if signalled:
                # A SIGTERM's SystemExit raised inside a library callback (the TFLite converter calls the
                # representative dataset from C++) comes back as some other error, e.g. a TypeError that
                # export reports as a failed conversion: the process was stopped, so exit as stopped.
                raise SystemExit(128 + signalled[0]) from None
            if not isinstance(exc, FmnistEdgeError):  # one hierarchy for every tier (runtime.errors)
                raise
            # The message is plain text: rich markup would swallow things like "fmnist-edge[train]".
            err_console.print(Text("error: ", style="bold red") + Text(str(exc)), highlight=False, soft_wrap=True)
            raise typer.Exit(getattr(exc, "exit_code", 1)) from None
        stop_if_signalled()  # a stop that a library swallowed entirely still exits as stopped
        return result

    return wrapper


def _terminate(signum, frame):
    # `timeout`, systemd and CI cancellation send SIGTERM: unwind like Ctrl-C, so that every staged or
    # partial output is removed on the way out, and exit with the conventional 128 + signal number.
    signalled.append(signum)
    raise SystemExit(128 + signum)


# What importing TensorFlow writes to stderr before its logging is set up, whatever TF_CPP_MIN_LOG_LEVEL says: absl's
# notice, then its info/warning lines (on a CPU-only machine "cudart_stub.cc: Could not find cuda drivers ...").
IMPORT_NOISE = (b"WARNING: All log messages before absl::InitializeLog()", b"I0000 ", b"W0000 ")


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Runs the first `import tensorflow` (wherever it happens: keras, tf_keras, tf2onnx) with IMPORT_NOISE dropped
    from stderr; TensorFlow is imported only by the commands that need it, so the hook costs the others nothing."""

    def find_spec(self, name, path, target=None):
        if name != "tensorflow":
            return None
        # Asked on every look-up (a find_spec check too, not only the import): a fresh spec each time, from the
        # finder that would have found it.
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            loader, exec_module = spec.loader, spec.loader.exec_module

            def quiet_exec(module):
                from runtime.backends import filtered_stderr

                with filtered_stderr(*IMPORT_NOISE):
                    exec_module(module)
                # Its Python logger's warnings are about its own tracing ("triggered tf.function retracing"), not
                # about the user's model; errors still show.
                logging.getLogger("tensorflow").setLevel(logging.ERROR)

            loader.exec_module = quiet_exec
        return spec


def quiet_tensorflow() -> None:
    """Keep TensorFlow's native log lines off the terminal (`fmnist-edge --verbose` keeps them): they are notices
    about the library and this machine (oneDNN, CUDA stubs, absl), never about the user's model, and users read
    them as failures; our own errors are raised in Python, so level 3 hides nothing a user needs."""
    if os.environ.get(VERBOSE_ENV) == "1":
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())


def require_train_extra(backend: str | None = None) -> None:
    # Training needs Keras, the chosen backend's library and matplotlib; TensorFlow only if it is the backend
    # (a GPU box may train under JAX or PyTorch without it).
    backend = backend or os.environ.get("KERAS_BACKEND", "tensorflow")
    missing = [m for m in ("keras", backend, "matplotlib") if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingExtraError(
            f"This command needs the training stack ({', '.join(missing)} not installed). "
            "Install it with: pip install 'fmnist-edge[train]'  (from a checkout: pip install -e '.[train]')"
        )
