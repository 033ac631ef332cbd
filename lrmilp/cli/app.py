"""The ``lrmilp`` command line's plumbing: the group, shared options, output and errors (CONTRACT.md §3).

Every command takes ``--json`` and then prints exactly one JSON object on stdout (strict JSON: a
non-finite number is null, and the result says why); logs and progress go to stderr.  Bad input exits
with status 2 and one line naming the problem (library parameters are named by their flags).
SIGTERM stops a command as Ctrl-C does.
"""

from __future__ import annotations

import json
import sys
from typing import Callable

import click

from .. import __version__
from ..errors import InputError, SolverUnavailable
from ..interrupts import terminate_as_interrupt
from ..jsonout import explain_nulls, jsonable

FLAGS = {"model": "MODEL", "spec": "SPEC", "output": "--out"}
"""Library parameters whose command-line name is not ``--`` + the name with ``_`` -> ``-``."""


# --- shared plumbing -----------------------------------------------------------------------------
def fail(message: str) -> None:
    """Exit 2 with one line on stderr."""
    click.echo(f"lrmilp: error: {' '.join(str(message).split())}", err=True)
    sys.exit(2)


def emit(result: dict, as_json: bool, human: Callable[[dict], str] | None = None) -> None:
    """Print ``result``: one strict JSON object (non-finite numbers as null, explained under "nulls"),
    or the ``human`` text."""
    if as_json:
        nulls: list[str] = []
        clean = explain_nulls(jsonable(result, nulls), nulls)
        click.echo(json.dumps(clean, allow_nan=False))
    else:
        click.echo(human(result) if human else "\n".join(f"{k}: {v}" for k, v in jsonable(result).items()))


def check_files(outputs: dict, inputs: dict) -> None:
    """One-line errors for outputs that are links, special files, in missing folders, or that name the
    same file as another output or an input (``{param: path}``; None skipped)."""
    from ..outputs import check_distinct, check_writable
    for param, path in outputs.items():
        if path is not None:
            check_writable(path, param)
    check_distinct(outputs, inputs)


def json_option(f):
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")(f)


def domain_options(f):
    """--box LO HI, --box-file F.json, --unbounded (CONTRACT.md §3)."""
    f = click.option("--unbounded", is_flag=True, help="All of R^n0.")(f)
    f = click.option("--box-file", type=click.Path(dir_okay=False),
                     help='JSON {"lo": [...], "hi": [...]} (optionally "A", "b" for a polytope A x <= b).')(f)
    f = click.option("--box", nargs=2, type=float, metavar="LO HI", help="The same bounds for every input.")(f)
    return f


def progress_option(f):
    """--progress/--no-progress: a progress line on stderr; by default when stderr is a terminal."""
    return click.option("--progress/--no-progress", default=None,
                        help="Progress on stderr (default: when stderr is a terminal).")(f)


def load(model: str, trust: bool = False, input_shape: tuple[int, ...] | None = None):
    from ..loaders import load_network
    return load_network(model, trust=trust, input_shape=input_shape)


def get_domain(net, box, box_file, unbounded):
    from ..domains import from_options
    return from_options(net.input_dim, box=box, box_file=box_file, unbounded=unbounded,
                        model_lo=net.lo, model_hi=net.hi)


class Shape(click.ParamType):
    """Comma-separated positive integers, such as ``1,28,28``, as a tuple."""

    name = "C,H,W"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            dims = tuple(int(s) for s in str(value).replace(" ", "").split(","))
        except ValueError:
            dims = ()
        if not dims or any(d < 1 for d in dims):
            self.fail(f"'{value}' is not positive integers separated by commas (C,H,W for an image, N for a "
                      f"flat input).", param, ctx)
        return dims


def input_shape_option(f):
    """--input-shape C,H,W: the shape of one input, for PyTorch models that do not record it."""
    return click.option("--input-shape", "input_shape", type=Shape(), default=None,
                        help="Shape of one input without the batch, e.g. 1,28,28: needed by a PyTorch model "
                             "starting with a convolution; checked against the shape an .npz, .onnx or .pt2 "
                             "records.")(f)


def model_argument(f):
    f = input_shape_option(f)
    f = click.option("--trust", is_flag=True,
                     help="Allow PyTorch files whose loading runs code from the file: a whole pickled module, "
                          "TorchScript, torch.export (.pt2).")(f)
    return click.argument("model", type=str)(f)


class OneLineGroup(click.Group):
    """A click group whose usage errors are one line (exit 2) and whose InputErrors exit 2."""

    def main(self, *args, **kwargs):
        kwargs["standalone_mode"] = False
        terminate_as_interrupt()  # SIGTERM (timeout, SLURM, Kubernetes) stops a command as Ctrl-C does
        if hasattr(sys, "set_int_max_str_digits"):
            sys.set_int_max_str_digits(0)  # exact bounds have thousands of digits
        try:
            rv = super().main(*args, **kwargs)
        except click.UsageError as e:
            if type(e).__name__.startswith("NoArgsIsHelp") and e.ctx is not None:
                click.echo(e.ctx.get_help())  # bare `lrmilp`: the help, as click would show it
                sys.exit(0)
            # one line still, but it says where the usage is (click's own hint is a second line)
            hint = f" See '{e.ctx.command_path} --help'." if e.ctx is not None else ""
            fail(e.format_message() + hint)
        except (click.Abort, KeyboardInterrupt):
            click.echo("lrmilp: interrupted", err=True)
            sys.exit(130)
        except click.exceptions.Exit as e:
            sys.exit(e.exit_code)
        except click.ClickException as e:
            fail(e.format_message())
        except InputError as e:
            fail(e.cli_message(FLAGS))
        except SolverUnavailable as e:
            fail(str(e))
        except OSError as e:  # a path the user named cannot be read or written
            fail(f"{e.strerror or e}: {e.filename}" if e.filename else str(e))
        if isinstance(rv, int):
            sys.exit(rv)
        return rv


@click.group(cls=OneLineGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lrmilp")
def main() -> None:
    """Count, bound and analyse the linear regions of ReLU networks."""


