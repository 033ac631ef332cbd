"""Issue 13, step 1 ("Truth and safety"): every bad input, fault and signal of the issue, replayed.

One test per item (README.md, "Reliability", lists them with what each gets).  Command-line checks run
``python -m lrmilp`` as users do; signal tests wait until the child has demonstrably started its
search before signalling, so they do not depend on machine speed (waits only bound a hang).
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import stat
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from lrmilp import random_mlp, save_npz
from lrmilp.counting import count_regions
from lrmilp.domains import Box
from lrmilp.errors import InputError
from lrmilp.regions import read_regions
from procs import HANG_SECONDS, Child, alive, children, wait_gone

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "random-4-12-12-s0.npz"  # 4 inputs, 24 neurons, box [-1, 1]^4, 4229 regions
TMPFS_BYTES = 16 * 1024
"""A 'full disk': every output these tests write is larger (the MPS is 30 KB, the regions 400 KB)."""


# --- helpers -------------------------------------------------------------------------------------

def cli(*args: str, preexec=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lrmilp", *map(str, args)], capture_output=True, text=True,
                          timeout=HANG_SECONDS, preexec_fn=preexec, cwd=ROOT)


def clis(*calls: tuple) -> list[subprocess.CompletedProcess]:
    """Several independent CLI calls, two at a time (they are mostly interpreter start-up)."""
    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(lambda args: cli(*args), calls))


def one_line_error(r: subprocess.CompletedProcess, *needles: str) -> str:
    """Assert exit 2, nothing on stdout, one line on stderr holding every needle; that line."""
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and r.stdout == "" and len(lines) == 1, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    for needle in needles:
        assert needle.lower() in lines[0].lower(), (needle, lines[0])
    return lines[0]


def strict_json(text: str) -> dict:
    """Parse as a strict parser does: NaN and Infinity are errors."""
    def refuse(token):
        raise ValueError(f"non-standard JSON constant {token}")
    return json.loads(text, parse_constant=refuse)


def net_file(tmp_path: Path, widths=(4, 6, 6), seed: int = 0, name: str = "n.npz", box: bool = True) -> Path:
    net = random_mlp(list(widths), seed=seed)
    if box:
        net.lo, net.hi = np.full(widths[0], -1.0), np.full(widths[0], 1.0)
    path = tmp_path / name
    save_npz(net, path)
    return path


def npz_with(tmp_path: Path, name: str, **changes) -> Path:
    """MODEL's arrays with ``changes`` (None drops a key), saved as ``name``."""
    arrays = dict(np.load(MODEL))
    for k, v in changes.items():
        if v is None:
            arrays.pop(k)
        else:
            arrays[k] = v
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


@pytest.fixture
def full_disk(tmp_path):
    """(folder, preexec): a folder on a tiny tmpfs (a real ENOSPC), or, where mounting is not allowed,
    a folder plus a preexec_fn limiting the child's file size (writes past it fail with EFBIG)."""
    folder = tmp_path / "full"
    folder.mkdir()
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES}", "tmpfs", str(folder)],
                                 capture_output=True).returncode == 0
    except OSError:  # no mount command
        mounted = False

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (TMPFS_BYTES, TMPFS_BYTES))

    try:
        yield folder, None if mounted else limit_file_size
    finally:
        if mounted:
            subprocess.run(["umount", str(folder)], capture_output=True)


# --- data destroyed or half-written --------------------------------------------------------------

def test_regions_out_refuses_fifo_device_and_symlink(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    device = tmp_path / "null"
    try:
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a /dev/null, made here (needs root)
    except PermissionError:
        device = None
    one_line_error(cli("count", MODEL, "--regions-out", fifo), "--regions-out", "FIFO")
    net, dom = random_mlp([4, 5]), Box(-1, 1, 4)
    for path, kind in [(link, "symbolic link"), (device, "character device"), (tmp_path, "folder")]:
        if path is not None:
            with pytest.raises(InputError, match=f"regions_out: .* is a {kind}"):
                count_regions(net, dom, regions_out=path)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and link.is_symlink() and target.read_text() == "keep me"
    assert device is None or stat.S_ISCHR(os.lstat(device).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["fifo", "precious.txt", "link.jsonl"]
                                                                + (["null"] if device else []))


def test_regions_out_refuses_checkpoint_and_model_path(tmp_path):
    model = tmp_path / "m.npz"
    model.write_bytes(MODEL.read_bytes())
    hard = tmp_path / "hard.npz"
    os.link(model, hard)
    ck = tmp_path / "ck.jsonl"
    before = model.read_bytes()
    r1, r2 = clis(("count", model, "--regions-out", model), ("count", model, "--jobs", "2", "--checkpoint", hard))
    one_line_error(r1, "--regions-out", "MODEL", "same file")
    one_line_error(r2, "--checkpoint", "MODEL", "same file")  # a hard link is the same file
    assert model.read_bytes() == before and not ck.exists()
    with pytest.raises(InputError, match="regions_out and checkpoint name the same file"):
        count_regions(random_mlp([3, 4]), Box(-1, 1, 3), regions_out=ck, checkpoint=ck)


def test_disk_full_export_milp_leaves_no_truncated_model(full_disk):
    folder, preexec = full_disk
    out = folder / "x.mps"
    one_line_error(cli("export-milp", MODEL, "--out", out, preexec=preexec), "--out", str(out))
    assert list(folder.iterdir()) == []  # neither a truncated x.mps nor its temporary file


def test_disk_full_regions_out_leaves_no_torn_file(full_disk):
    folder, preexec = full_disk
    out = folder / "r.jsonl"
    one_line_error(cli("count", MODEL, "--jobs", "1", "--regions-out", out, preexec=preexec), "--regions-out")
    assert list(folder.iterdir()) == []


class _FullDisk:
    """A file object that takes ``room`` bytes, then fails as a full disk does."""

    def __init__(self, fh, room: int) -> None:
        self.fh, self.room = fh, room

    def write(self, data):
        import errno
        self.room -= len(data)
        if self.room < 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self.fh.write(data)

    def __getattr__(self, name):
        return getattr(self.fh, name)


def test_disk_full_regions_out_in_the_library(tmp_path, monkeypatch):
    """The same fault injected into the library: ENOSPC from a write in the middle of a count."""
    import lrmilp.outputs as outputs
    real_init = outputs.AtomicFile.__init__

    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        self.fh = _FullDisk(self.fh, room=TMPFS_BYTES)
    monkeypatch.setattr(outputs.AtomicFile, "__init__", init)
    out = tmp_path / "r.jsonl"
    with pytest.raises(InputError, match="regions_out: cannot write .*No space left on device") as e:
        count_regions(random_mlp([3, 8, 8], seed=0), Box(-1, 1, 3), regions_out=out)
    assert e.value.cli_message().startswith("--regions-out: cannot write")
    assert list(tmp_path.iterdir()) == []


def test_disk_full_plot_leaves_no_part_file(full_disk, tmp_path):
    pytest.importorskip("matplotlib")
    folder, preexec = full_disk
    np.save(tmp_path / "P.npy", np.array([[0.0, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0]]))
    out = folder / "x.png"
    one_line_error(cli("plane", MODEL, "--points", tmp_path / "P.npy", "--plot", out, preexec=preexec), "--plot")
    assert list(folder.iterdir()) == []


def test_checkpoint_torn_last_line_is_cut_and_resume_continues(tmp_path):
    net, dom = random_mlp([4, 6, 6, 6], seed=0), Box(-1, 1, 4)  # 805 regions, 342 tasks
    exact = count_regions(net, dom).regions
    ck = tmp_path / "ck.jsonl"
    first = count_regions(net, dom, checkpoint=ck, task_budget=1e-3, max_regions=exact // 3)
    assert not first.complete
    raw = ck.read_bytes()
    ck.write_bytes(raw[:-9])  # a crash in the middle of appending the last record
    second = count_regions(net, dom, checkpoint=ck, task_budget=1e-3, max_regions=2 * exact // 3)
    lines = ck.read_bytes().splitlines(keepends=True)
    assert all(line.endswith(b"\n") for line in lines) and all(json.loads(line) for line in lines)
    assert second.extra["resumed_tasks"] > 0
    third = count_regions(net, dom, checkpoint=ck, task_budget=1e-3)  # resumes past the repaired line
    assert third.complete and third.regions == exact and third.extra["resumed_tasks"] > second.extra["resumed_tasks"]


@pytest.mark.parametrize("content", [b"\x8f\x02\xff random bytes\n\x00\x01", b"[1]\n", b"{}\n", "model",
                                     b"\xff\xfe not utf-8\n"])
def test_checkpoint_garbage_is_refused(tmp_path, content):
    ck = tmp_path / "ck.jsonl"
    ck.write_bytes(MODEL.read_bytes() if content == "model" else content)
    before = ck.read_bytes()
    with pytest.raises(InputError, match="is not an lrmilp journal"):
        count_regions(random_mlp([4, 5, 5], seed=0), Box(-1, 1, 4), checkpoint=ck, jobs=1)
    assert ck.read_bytes() == before  # never overwritten
    if content == b"{}\n":
        one_line_error(cli("count", MODEL, "--checkpoint", ck, "--jobs", "1"), "--checkpoint", "is not an lrmilp journal")


def test_resumed_regions_file_holds_every_region(tmp_path):
    net, dom = random_mlp([4, 6, 6, 6], seed=0), Box(-1, 1, 4)  # 805 regions, 342 tasks
    truth = {tuple(r["pattern"]) for r in _regions(net, dom, tmp_path / "serial.jsonl")}
    ck, out = tmp_path / "ck.jsonl", tmp_path / "r.jsonl"
    first = count_regions(net, dom, checkpoint=ck, task_budget=1e-3, max_regions=len(truth) // 3, regions_out=out)
    assert not first.complete and sum(1 for _ in read_regions(out)) == first.regions
    second = count_regions(net, dom, checkpoint=ck, task_budget=1e-3, jobs=2, regions_out=out)
    pats = [tuple(r["pattern"]) for r in read_regions(out)]
    assert second.complete and second.extra["resumed_tasks"] > 0
    assert len(pats) == len(set(pats)) == second.regions == len(truth) and set(pats) == truth
    # a journal that holds no regions cannot give them: refused, not a silently partial file
    bare = tmp_path / "bare.jsonl"
    count_regions(net, dom, checkpoint=bare, task_budget=1e-3, max_regions=100)
    with pytest.raises(InputError, match="started without regions_out"):
        count_regions(net, dom, checkpoint=bare, regions_out=tmp_path / "r2.jsonl")


def _regions(net, dom, path) -> list[dict]:
    count_regions(net, dom, regions_out=path)
    return list(read_regions(path))


# --- signals and processes -----------------------------------------------------------------------

@pytest.fixture
def long_net(tmp_path_factory, numba_cache) -> Path:
    """A net whose count takes many seconds (16 inputs: the compiled geometry, loaded from the cache the
    session built, not compiled in the child): every signal test interrupts it."""
    return net_file(tmp_path_factory.mktemp("long"), widths=(16, 11, 11), name="long.npz")


REGIONS_FOUND = re.compile(rb"regions [1-9]")
"""A progress line of a count that has found regions (a signal before the first would count none)."""


def _workers(child: Child, expected: int) -> list[int]:
    """The child's worker processes once there are ``expected`` of them (a count runs its root task
    itself and forks its workers after it), or whatever there are after HANG_SECONDS."""
    end = time.monotonic() + HANG_SECONDS
    while len(workers := children(child.pid)) < expected and time.monotonic() < end:
        time.sleep(0.05)
    return workers


def _interrupt(args: list, sig: int, needle: "bytes | re.Pattern[bytes]" = REGIONS_FOUND, *,
               workers: int = 0) -> tuple[dict, list[int], Child]:
    child = Child(*map(str, args), "--json", "--progress")
    child.wait_for_stderr(needle)  # the search is running, whatever the machine's load
    workers = _workers(child, workers)
    child.proc.send_signal(sig)
    code, out, err = child.finish()
    assert code == 0 and "Traceback" not in err, err
    return strict_json(out), workers, child


@pytest.mark.parametrize("jobs", [1, 2])
def test_sigterm_prints_partial_result_and_leaves_no_worker(long_net, tmp_path, jobs):
    out = tmp_path / "r.jsonl"
    res, workers, _ = _interrupt(["count", long_net, "--jobs", jobs, "--task-budget", "0.2", "--regions-out", out],
                                 signal.SIGTERM, workers=jobs if jobs > 1 else 0)
    assert res["complete"] is False and res["stopped"] == "interrupted" and res["regions"] > 0
    assert sum(1 for _ in read_regions(out)) == res["regions"]  # the file holds exactly the count
    assert len(workers) == (jobs if jobs > 1 else 0) and wait_gone(workers) == []


def test_ctrl_c_count_equals_regions_file(long_net, tmp_path):
    out = tmp_path / "r.jsonl"
    res, _, _ = _interrupt(["count", long_net, "--jobs", "2", "--task-budget", "0.2", "--regions-out", out],
                           signal.SIGINT)
    assert res["stopped"] == "interrupted" and sum(1 for _ in read_regions(out)) == res["regions"] > 0


@pytest.mark.parametrize("when", ["after the region is counted", "while its line is written"])
def test_interrupt_never_separates_count_and_regions_file(tmp_path, monkeypatch, when):
    """A stop signal at the worst instants of a serial count: the count still equals the file."""
    import lrmilp.outputs as outputs
    import lrmilp.regions as regions
    calls = {"n": 0}
    real_region, real_write = regions.RegionWriter.write, outputs.AtomicFile.write

    def on_region(self, pattern, point, margin):  # the search has counted this region already
        calls["n"] += 1
        if calls["n"] == 500 and when == "after the region is counted":
            signal.raise_signal(signal.SIGINT)  # this thread's signal: handled here, before the writer runs
        real_region(self, pattern, point, margin)

    def write(self, data):
        real_write(self, data)
        if calls["n"] == 500 and when == "while its line is written":
            signal.raise_signal(signal.SIGINT)  # inside the writer's section: takes effect after it
    monkeypatch.setattr(regions.RegionWriter, "write", on_region)
    monkeypatch.setattr(outputs.AtomicFile, "write", write)
    out = tmp_path / "r.jsonl"
    res = count_regions(random_mlp([3, 12, 12], seed=1), Box(-1, 1, 3), regions_out=out)
    assert res.stopped == "interrupted" and sum(1 for _ in read_regions(out)) == res.regions > 0


def test_sigkill_of_parent_kills_workers(long_net):
    child = Child("count", str(long_net), "--jobs", "2", "--task-budget", "0.2", "--progress")
    child.wait_for_stderr(b"tasks ")
    workers = _workers(child, 2)
    assert len(workers) == 2
    child.proc.kill()
    assert wait_gone(workers) == []
    child.finish()  # and nobody holds its stdout or stderr open any more


def test_worker_watches_its_parent_without_prctl(tmp_path):
    """The fallback of die_with_parent: without PR_SET_PDEATHSIG, the watcher thread kills an orphan."""
    script = tmp_path / "orphan.py"
    script.write_text(
        "import os, sys, time\n"
        "from lrmilp.interrupts import die_with_parent\n"
        "middle = os.getpid()\n"
        "if os.fork() == 0:\n"
        "    die_with_parent(middle, prctl=False)  # only the getppid() watcher is left\n"
        "    print(os.getpid(), flush=True)\n"
        "    time.sleep(600)\n"
        "    os._exit(0)\n"
        "time.sleep(600)\n")
    middle = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    grandchild = int(middle.stdout.readline())
    assert alive(grandchild)
    middle.kill()
    middle.wait()
    assert wait_gone([grandchild]) == []


@pytest.mark.parametrize("command", ["lower-bound", "sample"])
def test_sigterm_stops_lower_bound_and_sample_with_a_partial_result(long_net, command):
    # One level of many trials: the search runs for tens of seconds after its first progress line (the
    # default schedule finishes this net in about a second, so a signal could arrive after the end).
    args, needle = {"lower-bound": (["lower-bound", long_net, "--box", "-1", "1", "--xors", "12", "--trials", "50000"],
                                    b"level "),
                    "sample": (["sample", long_net, "--samples", "1000000000"], b"samples ")}[command]
    res, _, _ = _interrupt(args, signal.SIGTERM, needle)
    assert res["stopped"] == "interrupted"
    if command == "sample":
        assert res["complete"] is False and 0 < res["samples"] < 10**9 and res["distinct_patterns"] > 0


def test_sigterm_stops_faces_with_a_partial_result(monkeypatch):
    """faces has no progress line to wait for: the signal is sent from inside its facet phase."""
    import lrmilp.geometry.faces as faces
    real, calls = faces._facets, {"n": 0}

    def facets(*args):
        calls["n"] += 1
        if calls["n"] == 5:
            signal.raise_signal(signal.SIGTERM)  # this thread's signal: lands right after this region's facets
        return real(*args)
    monkeypatch.setattr(faces, "_facets", facets)
    res = faces.region_faces(random_mlp([3, 6, 6], seed=0), Box(-1, 1, 3)).to_dict()
    assert res["stopped"] == "interrupted" and res["complete"] is False
    assert 4 <= res["regions"] <= 5 < res["regions_found"] and sum(res["histogram"].values()) == res["regions"]


def test_sigterm_bench_prints_summary_and_kills_its_runs(tmp_path):
    net_file(tmp_path, name="net0.npz")
    pidfile = tmp_path / "worker.pid"
    (tmp_path / "slow.py").write_text("import os, time\n"
                                      "def run(net, domain, *, pidfile: str = ''):\n"
                                      "    open(pidfile, 'w').write(str(os.getpid()))\n"
                                      "    time.sleep(600)\n")
    spec = tmp_path / "s.toml"
    spec.write_text(f'models = ["net0.npz"]\ntime_limit = 600\n[[tasks]]\nkind = "slow:run"\npidfile = "{pidfile}"\n')
    child = Child("bench", str(spec), "--trust", "--json")
    end = time.monotonic() + HANG_SECONDS
    while not (pidfile.exists() and pidfile.read_text()):
        assert child.proc.poll() is None and time.monotonic() < end
        time.sleep(0.05)
    child.proc.send_signal(signal.SIGTERM)
    code, out, err = child.finish()
    res = strict_json(out)
    assert code == 0 and res["stopped"] == "interrupted" and res["complete"] is False, err
    assert wait_gone([int(pidfile.read_text())]) == []


# --- one line instead of a traceback -------------------------------------------------------------

def test_non_finite_or_negative_tol_and_time_limit_are_refused():
    from lrmilp.geometry.faces import region_faces
    from lrmilp.lowerbound import lower_bound
    r1, r2 = clis(("count", MODEL, "--tol", "nan"), ("lower-bound", MODEL, "--time-limit", "nan", "--tol", "-1"))
    one_line_error(r1, "--tol must be a positive finite number, got nan")
    one_line_error(r2, "--time-limit must be a positive finite number, got nan")
    net, dom = random_mlp([3, 4]), Box(-1, 1, 3)
    with pytest.raises(InputError, match=r"^tol must be a positive finite number, got nan$") as e:
        count_regions(net, dom, tol=float("nan"))
    assert e.value.param == ("tol",) and e.value.cli_message() == "--tol must be a positive finite number, got nan"
    path_err = InputError("checkpoint /runs/checkpoint/tol.json: 'checkpoint' is bad", param=("checkpoint", "tol"))
    assert path_err.cli_message() == "--checkpoint /runs/checkpoint/tol.json: 'checkpoint' is bad"
    for call, param in [(lambda: count_regions(net, dom, tol=float("inf")), "tol"),
                        (lambda: count_regions(net, dom, time_limit=float("nan")), "time_limit"),
                        (lambda: lower_bound(net, dom, tol=-1.0), "tol"),
                        (lambda: region_faces(net, dom, tol=float("nan")), "tol")]:
        with pytest.raises(InputError, match=f"^{param} must be a positive finite number"):
            call()


def test_npz_given_where_npy_is_expected_is_refused(tmp_path):
    np.savez(tmp_path / "X.npz", x=np.zeros((3, 4)))
    r1, r2 = clis(("sample", MODEL, "--distribution", "data", "--data", tmp_path / "X.npz", "--samples", "5"),
                  ("plane", MODEL, "--points", tmp_path / "X.npz"))
    one_line_error(r1, "--data", ".npz archive")
    one_line_error(r2, "--points", ".npz archive")


def test_npz_fields_of_the_wrong_kind_are_refused(tmp_path):
    cases = {
        "lo string": (npz_with(tmp_path, "lo.npz", lo=np.array("abc")), "lo must hold real numbers"),
        "layer gap": (npz_with(tmp_path, "gap.npz", W1=None, b1=None, W2=np.ones((3, 12)), b2=np.ones(3),
                               relu=np.array([1, 1, 0])), "key W1 is missing"),
        "relu strings": (npz_with(tmp_path, "relu.npz", relu=np.array(["1", "0"])), "relu must hold real numbers"),
        "complex weights": (npz_with(tmp_path, "cx.npz", W0=np.ones((12, 4)) * (1 + 1j)), "W0 must hold real"),
        "fractional input_shape": (npz_with(tmp_path, "sh.npz", input_shape=np.array([4.5])), "must hold integers"),
    }
    from lrmilp import load_network
    for path, needle in cases.values():
        with pytest.raises(InputError, match=needle):
            load_network(path)
    path, needle = cases["layer gap"]
    one_line_error(cli("info", path), str(path.name), needle)


def test_npz_declaring_a_huge_layer_is_refused_before_allocating(tmp_path):
    import io
    import zipfile
    from numpy.lib import format as npf
    header = io.BytesIO()
    npf.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)})
    bias = io.BytesIO()
    np.save(bias, np.zeros(10))
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w") as z:  # 8 TB declared, a few bytes stored
        z.writestr("W0.npy", header.getvalue() + b"\0" * 64)
        z.writestr("b0.npy", bias.getvalue())
    from lrmilp import load_network
    with pytest.raises(InputError, match=r"W0 declares shape \(1000000, 1000000\).*more than the limit"):
        load_network(path)


def test_bad_dask_address_is_refused():
    one_line_error(cli("count", MODEL, "--dask", "notaurl"), "--dask", "scheduler address")


def test_non_utf8_bench_results_file_is_refused(tmp_path):
    net_file(tmp_path, name="net0.npz")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "s.jsonl").write_bytes(b"\xff\xfe\x00 not ours\n")
    spec = tmp_path / "s.toml"
    spec.write_text('models = ["net0.npz"]\n[[tasks]]\nkind = "bounds"\n')
    from lrmilp.bench import load_spec, run_bench
    with pytest.raises(InputError, match="is not UTF-8 text"):
        run_bench(load_spec(spec), log=lambda line: None)
    assert (tmp_path / "results" / "s.jsonl").read_bytes() == b"\xff\xfe\x00 not ours\n"


def test_absurd_work_is_refused():
    from lrmilp.sampling import sample_patterns
    from lrmilp.theory import bounds_for_arch
    one_line_error(cli("bounds", "--arch", "100000,100000,100000"), "--arch", "limit of 20,000")
    with pytest.raises(InputError, match="arch has 200,000 neurons"):
        bounds_for_arch([100000, 100000, 100000])
    with pytest.raises(InputError, match="samples must be between 1 and 1,000,000,000"):
        sample_patterns(random_mlp([3, 4]), Box(-1, 1, 3), samples=10**14)


def test_json_output_is_strict(tmp_path):
    inf_box = npz_with(tmp_path, "inf.npz", lo=np.array(-np.inf), hi=np.array(np.inf))
    r1, r2 = clis(("tighten", MODEL, "--unbounded", "--json"), ("info", inf_box, "--json"))
    tight, info = strict_json(r1.stdout), strict_json(r2.stdout)
    assert tight["lower"][0] is None and "null where a bound is infinite" in tight["nulls"]
    assert info["default_box"]["lo"] is None and "null" in info["nulls"]


# --- trust ---------------------------------------------------------------------------------------

def test_bench_plugin_needs_trust(tmp_path):
    net_file(tmp_path, name="net0.npz")
    marker = tmp_path / "ran"
    (tmp_path / "plug.py").write_text(f"open({str(marker)!r}, 'w').write('imported')\n"
                                      "def run(net, domain):\n    return {'x': 1}\n")
    spec = tmp_path / "s.toml"
    spec.write_text('models = ["net0.npz"]\n[[tasks]]\nkind = "plug:run"\n')
    from lrmilp.bench import load_spec, run_bench
    one_line_error(cli("bench", spec, "--dry-run"), "tasks[0]", "plug:run", "--trust")
    with pytest.raises(InputError, match="allow it with trust"):
        load_spec(spec)
    assert not marker.exists()  # refused before importing anything
    done = run_bench(load_spec(spec, trust=True), log=lambda line: None)
    assert done["statuses"] == {"ok": 1} and marker.exists()


# --- what held already (kept from regressing) ----------------------------------------------------

def test_malformed_model_file_and_bad_box_are_refused(tmp_path):
    trunc = tmp_path / "trunc.npz"
    trunc.write_bytes(MODEL.read_bytes()[:200])
    from lrmilp import load_network
    with pytest.raises(InputError, match="cannot read"):
        load_network(trunc)
    with pytest.raises(InputError, match="lo > hi"):
        Box(1, -1, 4)


@pytest.mark.parametrize("taker", ["this thread, when unblocked", "another thread"])
def test_a_stop_during_a_pool_fork_is_held_until_the_fork_is_done(taker):
    """SIGTERM that arrives while a pool forks takes effect after, in plain code (not inside an at-fork
    hook, where Python ignores the exception and the stop would be lost) — also when the process has
    other threads, which may take the signal."""
    import os
    import signal
    import threading

    from lrmilp.interrupts import held_stop_signals, stop_signals
    done, ready = threading.Event(), threading.Event()

    def other_thread() -> None:  # a second thread, as a run may have
        ready.set()
        done.wait()

    threading.Thread(target=other_thread, daemon=True).start()
    ready.wait()
    seen = []
    try:
        with stop_signals(lambda s: seen.append(s) or KeyboardInterrupt()):
            with pytest.raises(KeyboardInterrupt):
                with held_stop_signals():
                    if taker == "another thread":
                        # A process signal: a thread that does not block it takes it (ours, or a native
                        # one such as a BLAS worker), and Python runs the handler in here, deferred.  Wait
                        # for that however loaded the machine is.
                        os.kill(os.getpid(), signal.SIGTERM)
                        until = time.monotonic() + 60
                        while not seen and time.monotonic() < until:
                            time.sleep(0.001)
                    else:  # a signal for this thread alone: it waits, blocked, until the body ends
                        signal.pthread_kill(threading.get_ident(), signal.SIGTERM)
                        assert signal.SIGTERM in signal.sigpending() and not seen
                    reached_end_of_body = True
            assert reached_end_of_body and seen == [signal.SIGTERM]
    finally:
        done.set()
