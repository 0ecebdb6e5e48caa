"""The `tfgan` click group. User errors become one line on stderr and exit status 2, never a traceback."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import click  # noqa: E402


def quiet_tensorflow_import() -> None:
    """Import TensorFlow with its C++ start-up chatter (CUDA stubs, oneDNN notes) hidden;
    TF 2.21 prints these before its log level applies. Replayed if the import fails."""
    if "tensorflow" in sys.modules:
        return
    import tempfile
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class UserError(click.ClickException):
    exit_code = 2


class TfganGroup(click.Group):
    def invoke(self, ctx):
        quiet_tensorflow_import()
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as e:
            from tfganomaly.errors import TfganomalyError
            if isinstance(e, TfganomalyError):
                raise UserError(str(e).splitlines()[0]) from None
            if isinstance(e, OSError):
                where = f" ({e.filename})" if getattr(e, "filename", None) else ""
                raise UserError(f"{e.strerror or e}{where}; check the path, free disk space and permissions") from None
            raise


@click.group(cls=TfganGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tfganomaly")
def cli():
    """GANomaly anomaly detection: train on good parts, calibrate, evaluate, export to TFLite."""


def _register():
    from . import evaluate, export, fit, score
    for module in (fit, evaluate, score, export):
        cli.add_command(module.command)


_register()

if __name__ == "__main__":
    sys.exit(cli())
