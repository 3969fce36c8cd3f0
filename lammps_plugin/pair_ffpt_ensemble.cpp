/* pair_style ffpt with a deep ensemble: model deviation as in DeePMD-kit.
 *
 *   pair_style ffpt [devi_file model_devi.out] [devi_every N] ...
 *   pair_coeff * * m1.pt m2.pt m3.pt O H
 *
 * The first model drives the dynamics (forces, energy, virial: exactly as with one model); the
 * K models together give the per-atom force deviation (DeePMD-kit's definition)
 *   devi_i = sqrt( < |F_i^m - <F_i>|^2 >_m ),   < >_m = mean over the K models,
 * and, over the atoms, its maximum, minimum and mean, plus devi_e = std_m(E^m) / N (eV/atom).
 * The extra models run on multiples of devi_every (default 1), on steps that tally the energy
 * (thermo output) and on steps where 'fix ID all pair N ffpt model_devi 1' asks for them;
 * otherwise only model 1 runs and the per-atom values are -1 (not computed).
 *
 * Output: 'compute ID all pair ffpt' -> c_ID[1..4] = max, min, mean deviation (eV/A), devi_e;
 * 'fix ID all pair N ffpt model_devi 1' -> per-atom f_ID (dump, compute reduce);
 * devi_file: rank 0 writes 'step max_devi_f min_devi_f avg_devi_f devi_e' every devi_every
 * steps (flushed at once, so a run that crashes keeps its last lines).
 *
 * Every model is evaluated on the ghost-shell graph of pair_ffpt.cpp (ensembles do not use the
 * per-layer exchange); each model's node forces are summed onto their LAMMPS atoms and ghost
 * rows go to their owners by reverse communication (3 K numbers per atom), so the deviation is
 * that of the total force on each atom, on any number of ranks. All models must share
 * elements (in order), cutoff and interaction count; members must be TorchScript (.pt).
 */
#include "pair_ffpt.h"
#include "ffpt_lammps_compat.h"

#include "atom.h"
#include "comm.h"
#include "error.h"
#include "update.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>

using namespace LAMMPS_NS;

namespace {
constexpr int NDEVI = 4;    // pvector: max, min, mean force deviation, energy deviation

std::string joined(const std::vector<std::string> &v)
{
  std::string s;
  for (const auto &x : v) s += (s.empty() ? "" : " ") + x;
  return s;
}
}    // namespace

/* pair_style keywords devi_file PATH and devi_every N; false if key is not one of them. */
bool PairFFPT::ensemble_keyword(const std::string &key, int narg, char **arg, int &iarg)
{
  if (key != "devi_file" && key != "devi_every") return false;
  if (iarg + 1 >= narg) error->all(FLERR, "pair_style ffpt: '{}' needs a value", key);
  if (key == "devi_file") {
    close_devi_file();
    devi_path = arg[iarg + 1];
  } else {
    devi_every = utils::inumeric(FLERR, arg[iarg + 1], false, lmp);
    if (devi_every < 1)
      error->all(FLERR, "pair_style ffpt: devi_every must be a positive number of steps, not {}",
                 devi_every);
  }
  iarg += 2;
  return true;
}

/* pair_coeff * * m1.pt [m2.pt ...] El...: load every model (the extra ones first, model 1 last,
   so that its metadata stays the pair style's) and check that they agree. Returns K. */
int PairFFPT::load_models(int narg, char **arg)
{
  const int ntypes = atom->ntypes;
  const int nmodels = std::max(1, narg - 2 - ntypes);
  members.clear();
  member_dtypes.clear();
  member_paths.clear();
  if (nmodels == 1) {
    load_model(arg[2]);
    nextra = 0;
    return 1;
  }
  for (int m = 1; m < nmodels; m++)
    if (!std::ifstream(arg[2 + m]).good())
      error->all(FLERR,
                 "pair_coeff * * {}: '{}' is not a readable model file; give the model file(s) "
                 "(several for an ensemble: m1.pt m2.pt ...) then one element (or NULL) per atom "
                 "type ({} types)",
                 arg[2], arg[2 + m], ntypes);
  if (exchange_request == LAYER)
    error->all(FLERR,
               "pair_style ffpt exchange layer does not run ensembles (pair_coeff with {} models); "
               "use 'exchange auto' or 'exchange shell' (ensembles use the ghost-shell graph)",
               nmodels);
  struct Meta {
    std::vector<std::string> elements;
    double cutoff;
    int interactions;
  };
  std::vector<Meta> meta;
  for (int m = 1; m < nmodels; m++) {
    load_model(arg[2 + m]);
    if (aoti)
      error->all(FLERR,
                 "pair_coeff * * ...: ensemble member '{}' is a compiled .pt2 package; deploy the "
                 "extra models as TorchScript (ffpt-deploy CHECKPOINT -o member.pt)",
                 arg[2 + m]);
    members.push_back(model);
    member_dtypes.push_back(dtype);
    member_paths.push_back(arg[2 + m]);
    meta.push_back({elements, cutoff, num_interactions});
  }
  load_model(arg[2]);
  for (size_t m = 0; m < meta.size(); m++) {
    const Meta &x = meta[m];
    if (x.elements != elements || std::fabs(x.cutoff - cutoff) > 1e-9 ||
        x.interactions != num_interactions)
      error->all(FLERR,
                 "pair_coeff * * ...: ensemble models disagree: '{}' has elements [{}], cutoff {} "
                 "A, {} interactions but '{}' has [{}], {} A, {}; use models of one training "
                 "config (ffpt train --ensemble K)",
                 member_paths[m], joined(x.elements), x.cutoff, x.interactions, arg[2],
                 joined(elements), cutoff, num_interactions);
  }
  nextra = NDEVI;
  devi_global.assign(NDEVI + 1, 0.0);    // + the last step written to devi_file
  devi_global[NDEVI] = -1.0;
  pvector = devi_global.data();
  if (comm->me == 0)
    utils::logmesg(lmp, "pair_style ffpt: ensemble of {} models, '{}' drives the dynamics\n",
                   nmodels, arg[2]);
  return nmodels;
}

/* init_style, with an ensemble: reverse-comm width, the deviation file (opened once). */
void PairFFPT::init_ensemble()
{
  const int K = (int) members.size() + 1;
  comm_reverse = std::max(comm_reverse, 3 * K);
  if (devi_path.empty() || devi_fp || comm->me != 0) return;
  devi_fp = std::fopen(devi_path.c_str(), "w");
  if (!devi_fp)
    error->one(FLERR, "pair_style ffpt: cannot write the deviation file '{}': {}", devi_path,
               std::strerror(errno));
  std::string names = model_path;
  for (const auto &p : member_paths) names += " " + p;
  fmt::print(devi_fp, "# model deviation of {} models ({}); eV/A, devi_e in eV/atom\n", K, names);
  fmt::print(devi_fp, "#{:>11s} {:>14s} {:>14s} {:>14s} {:>14s}\n", "step", "max_devi_f",
             "min_devi_f", "avg_devi_f", "devi_e");
  std::fflush(devi_fp);
  utils::logmesg(lmp, "pair_style ffpt: model deviation every {} steps -> {}\n", devi_every,
                 devi_path);
}

void PairFFPT::close_devi_file()
{
  if (devi_fp) std::fclose(devi_fp);
  devi_fp = nullptr;
}

/* The extra models on this rank's graph (inputs: pos, species, edge_index, edge_shift of model
   1, whose node forces and atomic energies are given), then the deviation. Collective: every
   rank calls it every step, also ranks without atoms (nnodes 0, empty inputs). */
void PairFFPT::compute_deviation(const std::vector<torch::Tensor> &inputs,
                                 const torch::Tensor &forces, const torch::Tensor &atomic,
                                 int nnodes)
{
  const bigint step = update->ntimestep;
  const int nlocal = atom->nlocal;
  const int nall = nlocal + atom->nghost;
  if ((int) devi_atom.size() < std::max(atom->nmax, 1)) devi_atom.resize(std::max(atom->nmax, 1));
  const bool due = step % devi_every == 0 || devi_flag || eflag_global;
  if (!due) {
    std::fill(devi_atom.begin(), devi_atom.begin() + nlocal, -1.0);
    return;
  }
  const int K = (int) members.size() + 1;
  const size_t C = 3 * (size_t) K;
  devi_rows.assign(C * (size_t) nall, 0.0);
  std::vector<double> energy(K, 0.0), total(K, 0.0);
  auto add = [&](int m, const torch::Tensor &f, const torch::Tensor &e) {
    torch::Tensor fc = f.detach().to(torch::kCPU, torch::kFloat64).contiguous();
    torch::Tensor ec = e.detach().to(torch::kCPU, torch::kFloat64).contiguous();
    const double *fp = fc.data_ptr<double>();
    const double *ep = ec.data_ptr<double>();
    for (int k = 0; k < nnodes; k++)
      for (int d = 0; d < 3; d++) devi_rows[C * node_atom[k] + 3 * m + d] += fp[3 * k + d];
    for (int i = 0; i < nlocal; i++) energy[m] += ep[i];
  };
  if (nnodes > 0) {
    add(0, forces, atomic);
    for (int m = 1; m < K; m++) {
      const torch::ScalarType dt = member_dtypes[m - 1];
      std::vector<torch::jit::IValue> in{inputs[0].to(dt), inputs[1], inputs[2],
                                         inputs[3].to(dt), (int64_t) nlocal};
      try {
        auto out = members[m - 1].forward(in).toTuple();
        add(m, out->elements()[2].toTensor(), out->elements()[1].toTensor());
      } catch (const std::exception &e) {
        std::string msg = e.what();
        error->one(FLERR, "pair_style ffpt: ensemble model '{}' failed: {}", member_paths[m - 1],
                   msg.substr(0, 400));
      }
    }
  }
  // ghost rows -> owners: the layer exchange's reverse comm on a 3K-wide buffer
  std::swap(comm_rows, devi_rows);
  const int channels = node_channels;
  node_channels = (int) C;
  ffpt_compat::reverse_comm(comm, this, (int) C);
  node_channels = channels;
  std::swap(comm_rows, devi_rows);

  double mine[3] = {0.0, std::numeric_limits<double>::max(), 0.0}, most, least, sum;
  for (int i = 0; i < nlocal; i++) {
    const double *row = devi_rows.data() + C * i;
    double mean[3] = {0.0, 0.0, 0.0}, var = 0.0;
    for (int m = 0; m < K; m++)
      for (int d = 0; d < 3; d++) mean[d] += row[3 * m + d] / K;
    for (int m = 0; m < K; m++)
      for (int d = 0; d < 3; d++) var += (row[3 * m + d] - mean[d]) * (row[3 * m + d] - mean[d]);
    devi_atom[i] = std::sqrt(var / K);
    mine[0] = std::max(mine[0], devi_atom[i]);
    mine[1] = std::min(mine[1], devi_atom[i]);
    mine[2] += devi_atom[i];
  }
  MPI_Allreduce(&mine[0], &most, 1, MPI_DOUBLE, MPI_MAX, world);
  MPI_Allreduce(&mine[1], &least, 1, MPI_DOUBLE, MPI_MIN, world);
  MPI_Allreduce(&mine[2], &sum, 1, MPI_DOUBLE, MPI_SUM, world);
  MPI_Allreduce(energy.data(), total.data(), K, MPI_DOUBLE, MPI_SUM, world);
  const double natoms = std::max(1.0, (double) atom->natoms);
  double emean = 0.0, evar = 0.0;
  for (int m = 0; m < K; m++) emean += total[m] / K;
  for (int m = 0; m < K; m++) evar += (total[m] - emean) * (total[m] - emean) / K;
  const double vals[NDEVI] = {most, least, sum / natoms, std::sqrt(evar) / natoms};
  // compute pair sums pvector over the ranks: the values live on rank 0
  for (int q = 0; q < NDEVI; q++) devi_global[q] = comm->me == 0 ? vals[q] : 0.0;
  if (devi_fp && step % devi_every == 0 && (double) step != devi_global[NDEVI]) {
    fmt::print(devi_fp, "{:>12d} {:14.6e} {:14.6e} {:14.6e} {:14.6e}\n", (long long) step,
               vals[0], vals[1], vals[2], vals[3]);
    std::fflush(devi_fp);
    devi_global[NDEVI] = (double) step;
  }
}

/* extract("model_devi_flag"): the trigger of fix pair (scalar int). */
void *PairFFPT::extract(const char *name, int &dim)
{
  dim = 0;
  if (strcmp(name, "model_devi_flag") == 0) return (void *) &devi_flag;
  return nullptr;
}

/* extract_peratom("model_devi"): the per-atom force deviation (eV/A; -1 = not computed). */
void *PairFFPT::extract_peratom(const char *name, int &ncol)
{
  ncol = 0;
  if (strcmp(name, "model_devi") == 0 && !members.empty()) return (void *) devi_atom.data();
  return nullptr;
}
