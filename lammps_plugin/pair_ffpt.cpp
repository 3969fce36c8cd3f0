/* pair_style ffpt: runs an ffpt-deploy TorchScript artifact inside LAMMPS.
 *
 * Model interface (see ffpt/deploy/deploy.py): forward(pos[N,3], species[N], edge_index[2,E],
 * edge_shift[E,3], nlocal) -> (energy of atoms 0..nlocal-1, atomic energies[N], forces[N,3] =
 * -dE/dpos for all N nodes, virial[3,3] = -sum_e edge_vec (x) dE/dedge_vec).
 *
 * Domain decomposition for a message-passing model (receptive field = L layers x cutoff r_c),
 * two modes (pair_style ffpt exchange auto|shell|layer):
 * - layer (pair_ffpt_layers.cpp; default with > 1 rank when the artifact has per-layer pieces):
 *   each rank evaluates its own atoms with one cutoff of ghosts and exchanges the ghosts' node
 *   features after every interaction (forward comm) and their gradients backwards (reverse
 *   comm), piece by piece.
 * - shell (this file; old artifacts, .pt2 packages, and the single domain on one rank): a ghost
 *   shell covering the receptive field. With more than one MPI rank the comm cutoff is
 *   widened to L * r_c + skin and the full neighbour list includes neighbours of ghost atoms
 *   (REQ_FULL | REQ_GHOST). Every rank then evaluates the model on the graph of all atoms within
 *   L hops of its owned atoms, sums only the owned atoms' energies (nlocal), and LAMMPS
 *   reverse-communicates the forces on ghost atoms (newton pair on). Exact with the plain deploy
 *   interface, but each rank also evaluates a shell L * r_c thick, so sub-domains smaller than
 *   the receptive field do not speed up with more ranks (docs/lammps.md).
 *
 * Graph construction (fold yes, default): one node per atom ID. A breadth-first search from
 * the owned atoms over the neighbour lists (edges < r_c) visits atoms in hop order; the first
 * image reached of an atom ID becomes its node and later images of the same ID (periodic images,
 * duplicate ghosts in small cells) are folded onto it with a Cartesian shift, as in the ASE
 * calculator. Nodes up to L - 1 hops have complete neighbour lists (they lie within (L-1) r_c of
 * the sub-domain, the shell is L r_c + skin) and contribute edges; nodes at hop L only enter
 * through their layer-0 features. On one rank every ghost is an image of an owned atom, so the
 * graph is exactly the periodic graph of the owned atoms (normal comm cutoff suffices).
 * fold no: every owned and ghost atom is its own node (the textbook ghost-shell graph; slower,
 * kept to validate the folding).
 *
 * The global virial comes from the model (identical to sum r.f over owned + ghost atoms in the
 * ghost graph; the only correct choice in the image graph), per-atom energies feed pe/atom.
 */
#include "pair_ffpt.h"
#include "ffpt_lammps_compat.h"
#include "sha256.h"

#include "atom.h"
#include "comm.h"
#include "domain.h"
#include "error.h"
#include "force.h"
#include "memory.h"
#include "neigh_list.h"
#include "neighbor.h"
#include "update.h"

#include <ATen/Parallel.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/cuda.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <thread>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

using namespace LAMMPS_NS;

// the artifact contract (FFPT_FORMAT_TAG, FFPT_FORMAT_VERSION, FFPT_METADATA_RECORD,
// FFPT_HASH_KEY, FFPT_UNHASHED_RECORD) comes from ffpt/deploy via CMake compile definitions
static constexpr double MASS_TOLERANCE = 0.5;  // u; type mass vs the element's standard mass
static constexpr int MAX_GPU_THREADS = 8;       // default torch threads per rank with a GPU

namespace {
// node-local MPI rank and rank count (threads and GPU per rank)
void node_local_rank(MPI_Comm world, int &local_rank, int &local_size)
{
#ifdef MPI_STUBS    // a LAMMPS built without MPI (BUILD_MPI=off): its stubs have no split_type
  (void) world;
  local_rank = 0;
  local_size = 1;
#else
  MPI_Comm node;
  int rank;
  MPI_Comm_rank(world, &rank);
  MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
  MPI_Comm_rank(node, &local_rank);
  MPI_Comm_size(node, &local_size);
  MPI_Comm_free(&node);
#endif
}

int env_int(const char *name)
{
  const char *v = std::getenv(name);
  if (!v || !*v) return 0;
  return std::max(0, std::atoi(v));
}

bool starts_with(const std::string &s, const char *prefix)
{
  return s.compare(0, std::strlen(prefix), prefix) == 0;
}

// the allow-list of compiled artifacts written by ffpt-deploy (ffpt/deploy/trust.py)
std::string trust_file()
{
  const char *env = std::getenv("FFPT_TRUST_FILE");
  if (env && *env) return env;
  const char *cache = std::getenv("XDG_CACHE_HOME");
  std::string dir = (cache && *cache) ? cache : std::string(std::getenv("HOME") ? std::getenv("HOME") : "") + "/.cache";
  return dir + "/ffpt/trusted-artifacts";
}

bool is_trusted(const std::string &digest)
{
  std::ifstream in(trust_file());
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string first;
    if (words >> first && first == digest) return true;
  }
  return false;
}

// content hash: records but the metadata and writer id, sorted, then the metadata without
// its hash line (the same definition as ffpt/deploy/trust.py::content_sha256)
std::string content_sha256(const std::map<std::string, std::string> &records, const std::string &text)
{
  ffpt::Sha256 h;
  for (const auto &r : records) {    // std::map: sorted by name (bytewise, as Python's sorted)
    if (r.first == FFPT_METADATA_RECORD || r.first == FFPT_UNHASHED_RECORD) continue;
    h.update(r.first + "\n" + std::to_string(r.second.size()) + "\n");
    h.update(r.second);
  }
  h.update(std::string(FFPT_METADATA_RECORD) + "\n");
  std::istringstream lines(text);
  std::string line;
  const std::string hash_line = std::string(FFPT_HASH_KEY) + "=";
  while (std::getline(lines, line))
    if (!line.empty() && !starts_with(line, hash_line.c_str())) h.update(line + "\n");
  return h.hex();
}

std::string major_minor(const std::string &v)
{
  auto first = v.find('.');
  if (first == std::string::npos) return v;
  auto second = v.find('.', first + 1);
  return v.substr(0, second);
}
}    // namespace

PairFFPT::PairFFPT(LAMMPS *lmp) :
    Pair(lmp), fold(true), use_ghosts(false), model_loaded(false), check_masses(true), trust(false),
    exchange_request(AUTO), layers(false), cross_pairs(false), cross_pairs_request(false), timing(false), node_channels(0), layer_hops(1), timed_steps(0), cpu_seconds(0.0), cpu_start(0.0), cpu_exchange(0.0), graph_nodes(0.0), graph_edges(0.0),
    device(torch::kCPU), dtype(torch::kFloat64), cutoff(0.0), num_interactions(0)
{
  std::fill(timers, timers + T_COUNT, 0.0);
  devi_every = 1;    // ensemble (pair_ffpt_ensemble.cpp)
  devi_flag = 0;
  devi_fp = nullptr;
  single_enable = 0;
  restartinfo = 0;
  one_coeff = 1;
  manybody_flag = 1;
  no_virial_fdotr_compute = 1;    // the virial comes from the model (see top of file)
  centroidstressflag = CENTROID_NOTAVAIL;
  setup_threads_and_device();
}

PairFFPT::~PairFFPT()
{
  aoti.reset();
  if (!aoti_dir.empty()) std::filesystem::remove_all(aoti_dir);
  close_devi_file();
  if (allocated) {
    memory->destroy(setflag);
    memory->destroy(cutsq);
    memory->destroy(cutghost);
  }
}

/* Threads: two OpenMP runtimes live in this process (LAMMPS' libgomp and torch's). Torch's
 * intra-op pool (process-wide, set once) gets FFPT_NUM_THREADS, else OMP_NUM_THREADS, else
 * (hardware threads / MPI ranks on this node), at least 1 and, with a GPU, at most
 * MAX_GPU_THREADS; inter-op parallelism is off (one model call at a time). With the
 * CUDA build of libtorch each node-local rank takes GPU (local rank mod device count). */
void PairFFPT::setup_threads_and_device()
{
  int local_rank = 0, local_size = 1;
  node_local_rank(world, local_rank, local_size);
  static bool threads_done = false;
  int nthreads = env_int("FFPT_NUM_THREADS");
  if (!nthreads) nthreads = env_int("OMP_NUM_THREADS");
  const bool cuda = torch::cuda::is_available();
  if (!nthreads) {
    int hw = (int) std::thread::hardware_concurrency();
    nthreads = std::max(1, hw / std::max(1, local_size));
    // with a GPU the threads only build the graph and convert copies: on the 16-core H200
    // machine 4 or 8 threads took 7 ms for a 12,288-atom graph, 16 threads 17 ms (contention)
    if (cuda) nthreads = std::min(nthreads, MAX_GPU_THREADS);
  }
  if (!threads_done) {
#if defined(__GLIBC__)
    // keep freed tensor memory in the process, as ffpt/model/malloc.py (FFPT_MALLOC_TUNING=0:
    // off): otherwise every step page-faults its working set again (measured: 1.6-2.5x the CPU
    // time of a 1,536-atom water step, benchmarks/results/lammps_scaling.md)
    const char *tuning = std::getenv("FFPT_MALLOC_TUNING");
    if (!tuning || std::string(tuning) != "0") {
      mallopt(M_MMAP_THRESHOLD, 1 << 30);
      mallopt(M_TRIM_THRESHOLD, 2147483647);
    }
#endif
    // The profiling graph executor re-specialises on every new number of edges and then runs
    // ~2x slower than eager for these models (measured); the legacy executor matches eager.
    torch::jit::getProfilingMode() = false;
    at::set_num_threads(nthreads);
    try {
      at::set_num_interop_threads(1);
    } catch (...) {
      // already set in this process (e.g. by Python torch); harmless
    }
    threads_done = true;
  }
  if (cuda) {
    int ndev = (int) torch::cuda::device_count();
    device = torch::Device(torch::kCUDA, (c10::DeviceIndex) (local_rank % std::max(1, ndev)));
  }
  if (comm->me == 0)
    utils::logmesg(lmp, "pair_style ffpt: {} torch thread(s) per MPI rank ({} rank(s) on this node), device {}\n",
                   at::get_num_threads(), local_size, device.str());
}

void PairFFPT::allocate()
{
  allocated = 1;
  int n = atom->ntypes;
  memory->create(setflag, n + 1, n + 1, "pair:setflag");
  memory->create(cutsq, n + 1, n + 1, "pair:cutsq");
  memory->create(cutghost, n + 1, n + 1, "pair:cutghost");
  for (int i = 1; i <= n; i++)
    for (int j = i; j <= n; j++) setflag[i][j] = 0;
  type2species.assign(n + 1, -1);
}

void PairFFPT::settings(int narg, char **arg)
{
  int iarg = 0;
  while (iarg < narg) {
    const std::string key = arg[iarg];
    if (key == "fold" || key == "check_masses" || key == "trust" || key == "timing" ||
        key == "cross_pairs") {
      if (iarg + 1 >= narg) error->all(FLERR, "pair_style ffpt: '{}' needs yes or no", key);
      const bool on = ffpt_compat::logical(FLERR, arg[iarg + 1], lmp) == 1;
      if (key == "fold") fold = on;
      else if (key == "cross_pairs") cross_pairs_request = on;
      else if (key == "check_masses") check_masses = on;
      else if (key == "timing") timing = on;
      else trust = on;
      iarg += 2;
    } else if (key == "exchange") {
      const std::string v = iarg + 1 < narg ? arg[iarg + 1] : "";
      if (v == "auto") exchange_request = AUTO;
      else if (v == "shell") exchange_request = SHELL;
      else if (v == "layer") exchange_request = LAYER;
      else
        error->all(FLERR, "pair_style ffpt: 'exchange' needs auto, shell or layer, got '{}'", v);
      iarg += 2;
    } else if (!ensemble_keyword(key, narg, arg, iarg)) {
      error->all(FLERR,
                 "pair_style ffpt: unknown keyword '{}'; usage: pair_style ffpt "
                 "[exchange auto|shell|layer] [cross_pairs yes|no] [fold yes|no] [timing yes|no] "
                 "[check_masses yes|no] [trust yes|no] [devi_file PATH] [devi_every N] "
                 "(the model file(s) and elements go into pair_coeff * * model.pt El1 El2 ...)",
                 arg[iarg]);
    }
  }
}

/* Read the artifact once, verify it, then load exactly the verified bytes: the content hash
   (weights, code, metadata) must match, and a compiled .pt2 must be on the allow-list (or
   'trust yes'); nothing is loaded before. */
void PairFFPT::load_model(const std::string &path)
{
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    if (!in.good())
      error->all(FLERR,
                 "pair_style ffpt: cannot open model file '{}'; create it with "
                 "'ffpt-deploy CHECKPOINT -o {}' or fix the path in pair_coeff",
                 path, path);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  const bool is_aoti = path.size() > 4 && path.compare(path.size() - 4, 4, ".pt2") == 0;
  std::map<std::string, std::string> records;
  try {
    std::istringstream in(bytes);
    caffe2::serialize::PyTorchStreamReader reader(&in);
    const auto names = reader.getAllRecords();
    if (std::set<std::string>(names.begin(), names.end()).size() != names.size())
      throw std::runtime_error("duplicate records");
    for (const auto &name : names) {
      auto rec = reader.getRecord(name);
      records[name] = std::string((const char *) std::get<0>(rec).get(), std::get<1>(rec));
    }
  } catch (const std::exception &e) {
    std::string msg = e.what();
    error->all(FLERR, "pair_style ffpt: '{}' is not an ffpt artifact (not {}: {}); create it with ffpt-deploy",
               path, is_aoti ? "an AOTInductor package" : "a TorchScript archive",
               msg.substr(0, msg.find('\n')));
  }
  auto meta = records.find(FFPT_METADATA_RECORD);
  if (meta == records.end()) {
    bool code = false, aoti_files = false;
    for (const auto &r : records) {
      code = code || starts_with(r.first, "code/");
      aoti_files = aoti_files || starts_with(r.first, "data/aotinductor/");
    }
    if (records.count("data.pkl") && !code && !aoti_files)
      error->all(FLERR,
                 "pair_style ffpt: '{}' is a training checkpoint, not a deployed artifact; "
                 "deploy it first: ffpt-deploy {}",
                 path, path);
    error->all(FLERR,
               "pair_style ffpt: '{}' is {} but not an ffpt artifact (no {} metadata); create it "
               "with ffpt-deploy",
               path, aoti_files ? "an AOTInductor package" : "a TorchScript file",
               FFPT_METADATA_RECORD);
  }
  const std::string text = meta->second;
  std::map<std::string, std::string> kv;
  {
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
      auto eq = line.find('=');
      if (eq != std::string::npos) kv[line.substr(0, eq)] = line.substr(eq + 1);
    }
  }
  check_format(path, kv);
  if (kv[FFPT_HASH_KEY].empty() || content_sha256(records, text) != kv[FFPT_HASH_KEY])
    error->all(FLERR,
               "pair_style ffpt: '{}': artifact modified after deployment (weights, code or "
               "metadata do not match its recorded hash); redeploy with ffpt-deploy",
               path);
  check_metadata(path, kv);

  aoti.reset();
  if (!aoti_dir.empty()) std::filesystem::remove_all(aoti_dir);
  aoti_dir.clear();
  if (is_aoti) {
    load_aoti(path, bytes, records);
  } else {
    try {
      std::istringstream in(bytes);
      model = torch::jit::load(in, torch::Device(torch::kCPU));
    } catch (const std::exception &e) {
      std::string msg = e.what();
      error->all(FLERR,
                 "pair_style ffpt: '{}' is not an ffpt artifact (not a TorchScript archive: {}); "
                 "create it with ffpt-deploy",
                 path, msg.substr(0, msg.find('\n')));
    }
    for (const auto &p : model.parameters()) {
      if (p.is_floating_point() && p.scalar_type() != dtype)
        error->all(FLERR,
                   "pair_style ffpt: dtype mismatch: '{}' declares {} but its weights are {}; "
                   "re-deploy with 'ffpt-deploy --dtype {}'",
                   path, kv["dtype"], std::string(c10::toString(p.scalar_type())), kv["dtype"]);
    }
    model.eval();
    if (device.is_cuda()) model.to(device);
  }
  model_loaded = true;
  model_path = path;
  if (comm->me == 0)
    utils::logmesg(lmp,
                   "pair_style ffpt: loaded {} ({}, ffpt {}, {}, elements {}, cutoff {} A, {} "
                   "interactions, receptive field {} A, content sha256 {} verified)\n",
                   path, is_aoti ? "AOTInductor" : "TorchScript", kv["ffpt_version"], kv["dtype"],
                   kv["elements"], cutoff, num_interactions, cutoff * num_interactions,
                   kv[FFPT_HASH_KEY].substr(0, 16));
}

/* A compiled package holds native code: only from the allow-list (or 'trust yes'); its verified
   records are written to a private folder and loaded from there (removed on failure/exit). */
void PairFFPT::load_aoti(const std::string &path, const std::string &bytes,
                         const std::map<std::string, std::string> &records)
{
  if (!trust) {
    ffpt::Sha256 h;
    h.update(bytes);
    const std::string digest = h.hex();
    if (!is_trusted(digest))
      error->all(FLERR,
                 "pair_style ffpt: '{}' is a compiled AOTInductor artifact that was not deployed "
                 "on this machine (sha256 {}... is not in {}); it contains native code that would "
                 "run with your rights. Only if you trust its source: ffpt-deploy --trust {}, or "
                 "pair_style ffpt trust yes",
                 path, digest.substr(0, 16), trust_file(), path);
  }
  namespace fs = std::filesystem;
  std::string tmpl = (fs::temp_directory_path() / "ffpt-aoti-XXXXXX").string();
  if (!mkdtemp(tmpl.data()))
    error->all(FLERR, "pair_style ffpt: cannot create a temporary folder for '{}': {}", path,
               std::strerror(errno));
  aoti_dir = tmpl;
  std::string msg;
  try {
    for (const auto &r : records) {
      if (r.first.empty() || r.first[0] == '/' || r.first.find("..") != std::string::npos)
        throw std::runtime_error("bad record name " + r.first);
      const fs::path target = fs::path(aoti_dir) / r.first;
      fs::create_directories(target.parent_path());
      std::ofstream out(target, std::ios::binary);
      out.write(r.second.data(), (std::streamsize) r.second.size());
      if (!out) throw std::runtime_error("cannot write " + target.string());
    }
    aoti = std::make_unique<torch::inductor::AOTIModelPackageLoader>(
        aoti_dir, "model", false, 1, device.is_cuda() ? device.index() : (c10::DeviceIndex) -1);
  } catch (const std::exception &e) {
    msg = e.what();
  }
  if (!msg.empty()) {
    std::filesystem::remove_all(aoti_dir);
    aoti_dir.clear();
    error->all(FLERR, "pair_style ffpt: cannot load AOTInductor package '{}': {}", path,
               msg.substr(0, msg.find('\n')));
  }
}

/* Format tag and versions: checked before the hash, so that an old artifact is told to redeploy. */
void PairFFPT::check_format(const std::string &path, std::map<std::string, std::string> &kv)
{
  if (kv["format"] != FFPT_FORMAT_TAG)
    error->all(FLERR, "pair_style ffpt: '{}' is not an ffpt artifact (format '{}'); create it with ffpt-deploy",
               path, kv["format"]);
  int fv = std::atoi(kv["format_version"].c_str());
  if (fv != FFPT_FORMAT_VERSION)
    error->all(FLERR,
               "pair_style ffpt: version mismatch: '{}' has artifact format version {} (ffpt {}) but this "
               "plugin (ffpt {}) reads version {}; re-deploy the checkpoint with this ffpt or "
               "rebuild the plugin with 'ffpt build-plugin'",
               path, kv["format_version"], kv["ffpt_version"], FFPT_VERSION, FFPT_FORMAT_VERSION);
  if (major_minor(kv["ffpt_version"]) != major_minor(FFPT_VERSION))
    error->all(FLERR,
               "pair_style ffpt: version mismatch: '{}' was deployed with ffpt {} but this plugin "
               "belongs to ffpt {}; re-deploy the checkpoint with this ffpt",
               path, kv["ffpt_version"], FFPT_VERSION);
}

void PairFFPT::check_metadata(const std::string &path, std::map<std::string, std::string> &kv)
{
  const std::string &dt = kv["dtype"];
  if (dt == "float64")
    dtype = torch::kFloat64;
  else if (dt == "float32")
    dtype = torch::kFloat32;
  else
    error->all(FLERR, "pair_style ffpt: dtype mismatch: '{}' declares dtype '{}'; expected float32 or float64",
               path, dt);
  elements.clear();
  std::istringstream els(kv["elements"]);
  std::string el;
  while (els >> el) elements.push_back(el);
  model_masses.clear();
  std::istringstream ms(kv["masses"]);
  double m;
  while (ms >> m) model_masses.push_back(m);
  cutoff = std::atof(kv["cutoff"].c_str());
  num_interactions = std::atoi(kv["num_interactions"].c_str());
  node_channels = std::max(0, std::atoi(kv["node_features"].c_str()));    // absent: old artifact
  layer_hops = std::max(1, std::atoi(kv["layer_hops"].c_str()));
  if (elements.empty() || cutoff <= 0.0 || num_interactions <= 0 ||
      model_masses.size() != elements.size())
    error->all(FLERR, "pair_style ffpt: '{}' has incomplete metadata (elements, masses, cutoff, "
               "num_interactions)", path);
}

/* Per-type masses (when set) against the standard masses of the mapped elements: catches
   element lists in the wrong order (pair_coeff * * m.pt H O for an O H data file). */
void PairFFPT::check_type_masses()
{
  if (!check_masses || !atom->mass || !atom->mass_setflag) return;
  for (int t = 1; t <= atom->ntypes; t++) {
    const int s = type2species[t];
    if (s < 0 || !atom->mass_setflag[t] || model_masses[s] <= 0.0) continue;
    if (std::fabs(atom->mass[t] - model_masses[s]) > MASS_TOLERANCE)
      error->all(FLERR,
                 "pair_coeff * * {}: atom type {} has mass {} but is mapped to element {} "
                 "(standard mass {:.3f}); fix the element order in pair_coeff or the masses, or "
                 "use 'pair_style ffpt check_masses no' (e.g. for isotopes)",
                 model_path, t, atom->mass[t], elements[s], model_masses[s]);
  }
}

void PairFFPT::coeff(int narg, char **arg)
{
  if (!allocated) allocate();
  int ntypes = atom->ntypes;
  if (narg < 3 || strcmp(arg[0], "*") != 0 || strcmp(arg[1], "*") != 0)
    error->all(FLERR, "pair_coeff for ffpt must be: pair_coeff * * model.pt El1 ... El{} (one per atom type)",
               ntypes);
  const int nmodels = load_models(narg, arg);    // > 1: an ensemble (pair_ffpt_ensemble.cpp)
  std::string known;
  for (const auto &e : elements) known += " " + e;
  if (narg != 2 + nmodels + ntypes)
    error->all(FLERR,
               "pair_coeff * * {}: wrong number of element names: {} given but the box has {} atom "
               "types; give one element (or NULL) per type, the model knows{}",
               arg[2], narg - 3, ntypes, known);
  for (int t = 1; t <= ntypes; t++) {
    std::string name = arg[1 + nmodels + t];
    if (name == "NULL") {
      type2species[t] = -1;
      continue;
    }
    auto it = std::find(elements.begin(), elements.end(), name);
    if (it == elements.end())
      error->all(FLERR, "pair_coeff * * {}: unknown element '{}' for atom type {}; the model knows{}",
                 arg[2], name, t, known);
    type2species[t] = (int) (it - elements.begin());
  }
  for (int i = 1; i <= ntypes; i++)
    for (int j = i; j <= ntypes; j++) setflag[i][j] = 1;
}

void PairFFPT::init_style()
{
  if (strcmp(update->unit_style, "metal") != 0)
    error->all(FLERR,
               "pair_style ffpt requires 'units metal' (eV, Angstrom, ps) but the input uses "
               "'units {}'; put 'units metal' before the box is created",
               update->unit_style);
  if (force->newton_pair == 0)
    error->all(FLERR, "pair_style ffpt requires newton pair on; remove 'newton off' (or use 'newton on')");
  if (atom->tag_enable == 0) error->all(FLERR, "pair_style ffpt requires atom IDs (atom_modify id yes)");
  if (!model_loaded) error->all(FLERR, "pair_style ffpt: pair_coeff * * model.pt El1 ... is missing");

  // a type mapped to NULL must not have atoms
  int ntypes = atom->ntypes;
  std::vector<bigint> count(ntypes + 1, 0), total(ntypes + 1, 0);
  for (int i = 0; i < atom->nlocal; i++) count[atom->type[i]]++;
  MPI_Allreduce(count.data(), total.data(), ntypes + 1, MPI_LMP_BIGINT, MPI_SUM, world);
  for (int t = 1; t <= ntypes; t++)
    if (type2species[t] < 0 && total[t] > 0)
      error->all(FLERR,
                 "pair_coeff * * {}: atom type {} is mapped to NULL but has {} atoms; give it an "
                 "element symbol",
                 model_path, t, total[t]);
  check_type_masses();

  // per-layer exchange (pair_ffpt_layers.cpp) or the ghost shell covering the receptive field
  const bool can_layer = node_channels > 0 && !aoti && members.empty();
  if (exchange_request == LAYER && !can_layer)
    error->all(FLERR,
               "pair_style ffpt exchange layer: '{}' has no per-layer pieces ({}); use "
               "'exchange shell' or re-deploy the NewtonNet checkpoint as TorchScript with this "
               "ffpt (ffpt-deploy CHECKPOINT -o model.pt)",
               model_path, aoti ? "an AOTInductor package" : "an older or non-NewtonNet artifact");
  layers = exchange_request == LAYER || (exchange_request == AUTO && can_layer && comm->nprocs > 1);
  // cross_pairs yes: one rank computes each cross-rank edge pair (pair_ffpt_layers.cpp); needs
  // one-hop layers, a folded graph and an artifact with the split layers (messages + update).
  // Off by default: on 2 ranks it saved ~5 % of the model time and cost as much in exchanges
  // (benchmarks/results/lammps_scaling.md)
  const bool can_pair = layers && layer_hops == 1 && fold &&    // layers: a TorchScript model
      model.find_method("messages").has_value() &&
      model.find_method("update").has_value() && model.find_method("edge_pairs").has_value();
  cross_pairs = cross_pairs_request && can_pair;
  if (cross_pairs_request && layers && !can_pair)    // (exchange shell ignores the keyword)
    error->all(FLERR,
               "pair_style ffpt cross_pairs yes: '{}' cannot pair cross-rank edges ({}); drop "
               "'cross_pairs yes'",
               model_path,
               !fold ? "fold no" : layer_hops > 1 ? "the model has latent displacements"
                                                  : "an artifact without the messages/update "
                                                    "pieces: re-deploy it with this ffpt");
  use_ghosts = layers ? layer_hops > 1 : (comm->nprocs > 1 || !fold);
  ghostneigh = use_ghosts ? 1 : 0;
  comm_forward = comm_reverse = layers ? node_channels : 0;
  if (layers && !use_ghosts) {
    ffpt_compat::request_full(neighbor, this, instance_me, false);
  } else if (use_ghosts) {
    ffpt_compat::request_full(neighbor, this, instance_me, true);
    // ghost shell = receptive field (+ skin so it stays valid until the next reneighbouring);
    // per-layer exchange: the edges one interaction reaches
    double need = (layers ? layer_hops : num_interactions) * cutoff + neighbor->skin;
    if (comm->cutghostuser < need) {
      comm->cutghostuser = need;
      if (comm->me == 0)
        utils::logmesg(lmp, "pair_style ffpt: ghost shell (comm cutoff) set to {} A\n", need);
    }
  } else {
    ffpt_compat::request_full(neighbor, this, instance_me, false);
  }
  if (!members.empty()) init_ensemble();
  if (comm->me == 0)
    utils::logmesg(lmp, "pair_style ffpt: {} graph, {}\n", fold ? "folded" : "unfolded",
                   layers ? fmt::format("per-layer exchange of ghost features ({} per atom){}",
                                        node_channels,
                                        cross_pairs ? ", cross-rank edge pairs once" : "")
                          : use_ghosts ? "ghost shell covers the receptive field" : "single domain");
}

double PairFFPT::init_one(int i, int j)
{
  cutghost[i][j] = cutghost[j][i] = cutoff;
  return cutoff;
}

/* Energy/virial flags (eatom allocated and zeroed by Pair) and the step timers; also ffpt/kk. */
void PairFFPT::start_step(int eflag, int vflag)
{
  ev_init(eflag, vflag);
  if (vflag_atom)
    error->all(FLERR, "pair_style ffpt does not provide per-atom virials (compute stress/atom)");
  tick = std::chrono::steady_clock::now();
  timed_steps++;
  cpu_start = process_cpu_seconds();
}

void PairFFPT::compute(int eflag, int vflag)
{
  start_step(eflag, vflag);
  if (layers) {
    compute_layers();
    cpu_seconds += process_cpu_seconds() - cpu_start;
    return;
  }

  const int nnodes = fold ? build_folded_graph() : build_unfolded_graph();
  graph_nodes += nnodes;
  graph_edges += (double) edge_i.size();
  lap(T_GRAPH);
  const int nlocal = atom->nlocal;
  double **f = atom->f;

  if (nnodes == 0) {    // an empty sub-domain contributes nothing
    if (!members.empty()) compute_deviation({}, torch::Tensor(), torch::Tensor(), 0);
    return;
  }

  const int64_t nedges = (int64_t) edge_i.size();
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  auto i64 = torch::TensorOptions().dtype(torch::kInt64);
  // bulk copies: from_blob views of LAMMPS/host buffers, then one copy to the model dtype/device
  torch::Tensor pos = to_model(torch::from_blob(node_pos.data(), {nnodes, 3}, f64));
  torch::Tensor spec = torch::from_blob(species.data(), {nnodes}, i64).to(device, false, true);
  torch::Tensor eidx = torch::empty({2, nedges}, i64.device(device));
  eidx[0].copy_(torch::from_blob(edge_i.data(), {nedges}, i64));
  eidx[1].copy_(torch::from_blob(edge_j.data(), {nedges}, i64));
  torch::Tensor eshift = to_model(torch::from_blob(edge_shift.data(), {nedges, 3}, f64));
  lap(T_TO_MODEL);

  std::vector<torch::Tensor> res = run_model(pos, spec, eidx, eshift, nlocal);
  lap(T_FORWARD);    // forward and backward: one model call
  tally_energy(res[1]);

  torch::Tensor forces = res[2].to(torch::kCPU, torch::kFloat64).contiguous();
  const double *fp = forces.data_ptr<double>();
  check_forces(fp, nnodes);
  for (int k = 0; k < nnodes; k++) {
    const int a = node_atom[k];    // the owned or ghost atom that represents node k
    f[a][0] += fp[3 * k];
    f[a][1] += fp[3 * k + 1];
    f[a][2] += fp[3 * k + 2];
  }
  if (vflag_global) tally_virial(res[3]);
  if (!members.empty()) compute_deviation({pos, spec, eidx, eshift}, forces, res[1], nnodes);
  lap(T_FROM_MODEL);
  cpu_seconds += process_cpu_seconds() - cpu_start;
}

/* A float64 host tensor in the model's dtype on its device. For a GPU, a float32 model's data is
   converted on the host first (torch's threads), so half the bytes cross to the device. */
torch::Tensor PairFFPT::to_model(const torch::Tensor &host) const
{
  if (device.is_cuda() && dtype != host.scalar_type()) return host.to(dtype).to(device);
  return host.to(device, dtype, false, true);
}

/* One model call (TorchScript or AOTInductor) on graph tensors of the model's device and dtype:
   (energy of nodes 0..nlocal-1, atomic energies, forces, virial). Also used by ffpt/kk. */
std::vector<torch::Tensor> PairFFPT::run_model(const torch::Tensor &pos, const torch::Tensor &spec,
                                               const torch::Tensor &eidx,
                                               const torch::Tensor &eshift, int nlocal)
{
  std::vector<torch::Tensor> res;
  try {
    if (aoti) {
      // AOTInductor interface: a mask of the nodes whose energies are summed
      torch::Tensor mask = torch::zeros({pos.size(0)}, pos.options());
      mask.narrow(0, 0, nlocal).fill_(1.0);
      res = aoti->run({pos, spec, eidx, eshift, mask});
    } else {
      std::vector<torch::jit::IValue> inputs{pos, spec, eidx, eshift, (int64_t) nlocal};
      auto out = model.forward(inputs).toTuple();
      for (const auto &v : out->elements()) res.push_back(v.toTensor());
    }
  } catch (const std::exception &e) {
    std::string msg = e.what();
    error->one(FLERR, "pair_style ffpt: the model failed: {}", msg.substr(0, 400));
  }
  return res;
}

/* The model's 3x3 virial (-sum_e edge_vec (x) dE/dedge_vec) -> LAMMPS' 6 global components. */
void PairFFPT::tally_virial(const torch::Tensor &w3)
{
  torch::Tensor w = w3.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  const double *wp = w.data_ptr<double>();
  virial[0] += wp[0];
  virial[1] += wp[4];
  virial[2] += wp[8];
  virial[3] += 0.5 * (wp[1] + wp[3]);
  virial[4] += 0.5 * (wp[2] + wp[6]);
  virial[5] += 0.5 * (wp[5] + wp[7]);
}

void PairFFPT::lap(int which)
{
  if (timing && device.is_cuda()) torch::cuda::synchronize();  // attribute GPU work to its part
  const auto now = std::chrono::steady_clock::now();
  timers[which] += std::chrono::duration<double>(now - tick).count();
  tick = now;
}

/* pair_style ffpt timing yes: ms per step of each part (mean over ranks, and the slowest rank),
   and the peak resident memory per rank; then the timers restart for the next run. */
void PairFFPT::finish()
{
  if (timing && timed_steps > 0) {
    static const char *names[T_COUNT] = {"graph build", "copies to the model",
                                         "model forward", "model backward",
                                         "ghost exchange", "forces/energy/virial out"};
    double mine[T_COUNT + 5], sum[T_COUNT + 5], most[T_COUNT + 5];
    double total = 0.0;
    for (int t = 0; t < T_COUNT; t++) total += (mine[t] = 1e3 * timers[t] / timed_steps);
    mine[T_COUNT] = total;
    mine[T_COUNT + 1] = 1e3 * cpu_seconds / timed_steps;
    mine[T_COUNT + 2] = 1e3 * cpu_exchange / timed_steps;
    mine[T_COUNT + 3] = graph_nodes / timed_steps;
    mine[T_COUNT + 4] = graph_edges / timed_steps;
    MPI_Allreduce(mine, sum, T_COUNT + 5, MPI_DOUBLE, MPI_SUM, world);
    MPI_Allreduce(mine, most, T_COUNT + 5, MPI_DOUBLE, MPI_MAX, world);
    std::ifstream status("/proc/self/status");
    std::string line;
    double rss = 0.0, rss_max = 0.0;
    while (std::getline(status, line))
      if (starts_with(line, "VmHWM:")) rss = std::atof(line.substr(6).c_str()) / 1024.0;
    MPI_Allreduce(&rss, &rss_max, 1, MPI_DOUBLE, MPI_MAX, world);
    if (comm->me == 0) {
      const int n = comm->nprocs;
      std::string text = fmt::format(
          "pair_style ffpt timing ({} exchange, {} steps, {} rank(s)): ms/step mean over ranks "
          "(slowest rank)\n", layers ? "layer" : "shell", timed_steps, n);
      for (int t = 0; t < T_COUNT; t++)
        text += fmt::format("  {:<26s} {:10.3f} ({:.3f})\n", names[t], sum[t] / n, most[t]);
      text += fmt::format("  {:<26s} {:10.3f} ({:.3f})\n", "total in pair_style",
                          sum[T_COUNT] / n, most[T_COUNT]);
      text += fmt::format("  {:<26s} {:10.3f} ({:.3f})\n", "CPU time in pair_style",
                          sum[T_COUNT + 1] / n, most[T_COUNT + 1]);
      text += fmt::format("  {:<26s} {:10.3f} ({:.3f})\n", "  of which ghost exchange",
                          sum[T_COUNT + 2] / n, most[T_COUNT + 2]);
      text += fmt::format("  graph per rank: {:.0f} nodes = {:.1f} % of the {} atoms ({:.1f} %), "
                          "{:.0f} edges ({:.0f})\n",
                          sum[T_COUNT + 3] / n, 100.0 * sum[T_COUNT + 3] / n / atom->natoms,
                          atom->natoms, 100.0 * most[T_COUNT + 3] / atom->natoms,
                          sum[T_COUNT + 4] / n, most[T_COUNT + 4]);
      text += fmt::format("  peak memory (VmHWM) per rank: {:.1f} MB (largest rank)\n", rss_max);
      utils::logmesg(lmp, text);
    }
  }
  std::fill(timers, timers + T_COUNT, 0.0);
  timed_steps = 0;
  cpu_seconds = cpu_exchange = graph_nodes = graph_edges = 0.0;
}

/* Non-finite or absurd forces: an error naming the atom (not a silently exploding run). */
void PairFFPT::check_forces(const double *fp, int nnodes)
{
  for (int k = 0; k < nnodes; k++) check_force(fp + 3 * k, node_atom[k]);
}

/* Energy = double sum of the owned atoms' energies (atomic[0..nlocal-1]) in index order: it
   equals the sum of compute pe/atom and does not depend on the model's (float32) reduction
   order or the rank count. A non-finite energy stops the run. */
void PairFFPT::tally_energy(const torch::Tensor &atomic)
{
  const int nlocal = atom->nlocal;
  torch::Tensor ae = atomic.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  const double *ep = ae.data_ptr<double>();
  double energy = 0.0;
  for (int i = 0; i < nlocal; i++) energy += ep[i];
  if (!std::isfinite(energy))
    error->one(FLERR,
               "pair_style ffpt: the model returned a non-finite energy (NaN or Inf) at step {} "
               "(atoms too close, or a broken model); check the structure and the model",
               update->ntimestep);
  if (eflag_global) eng_vdwl += energy;
  if (eflag_atom)
    for (int i = 0; i < nlocal; i++) eatom[i] += ep[i];
}

/* One force on LAMMPS atom a: non-finite or above MAX_FORCE stops the run naming the atom. */
void PairFFPT::check_force(const double *fa, int a)
{
  const double f2 = fa[0] * fa[0] + fa[1] * fa[1] + fa[2] * fa[2];
  if (!(f2 <= MAX_FORCE * MAX_FORCE))
    error->one(FLERR,
               "pair_style ffpt: the model returned a force of {:.3g} eV/A on atom {} at step {} "
               "(non-finite or above {:g} eV/A): the structure or the model is broken; check the "
               "coordinates, the timestep and the model",
               std::sqrt(f2), atom->tag[a], update->ntimestep, MAX_FORCE);
}

/* Two atoms closer than MIN_DISTANCE: broken coordinates; stop with both atom IDs. */
void PairFFPT::too_close(int a, int b, double rsq)
{
  tagint ta = atom->tag[a], tb = atom->tag[b];
  if (ta > tb) std::swap(ta, tb);
  error->one(FLERR,
             "pair_style ffpt: atoms {} and {} are {:.3g} A apart (closer than {} A) at step {}: "
             "the structure is broken (overlapping atoms in the data file, or an exploding run); "
             "fix the coordinates or reduce the timestep",
             ta, tb, std::sqrt(rsq), MIN_DISTANCE, update->ntimestep);
}

double PairFFPT::memory_usage()
{
  double bytes = Pair::memory_usage();
  bytes += (double) (edge_i.capacity() + edge_j.capacity() + species.capacity()) * sizeof(int64_t);
  bytes += (double) (edge_shift.capacity() + node_pos.capacity()) * sizeof(double);
  bytes += (double) (tag2node.capacity() + node_atom.capacity() + node_hop.capacity() +
                     edge_atom.capacity()) * sizeof(int);
  bytes += (double) (edge_vec.capacity() + comm_rows.capacity() + atom_force.capacity()) *
      sizeof(double);
  return bytes;
}

/* The shell graph: one node per atom ID (folded), num_interactions hops from the owned atoms;
   edge_shift holds each edge's periodic offset against the atom that represents node j. */
int PairFFPT::build_folded_graph()
{
  const int nnodes = breadth_first_graph(num_interactions);
  double **x = atom->x;
  const size_t nedges = edge_i.size();
  edge_shift.resize(3 * nedges);
  at::parallel_for(0, (int64_t) nedges, 4096, [&](int64_t b, int64_t end) {
    for (int64_t e = b; e < end; e++) {
      const int j = edge_atom[e], r = node_atom[edge_j[e]];
      for (int d = 0; d < 3; d++) edge_shift[3 * e + d] = x[j][d] - x[r][d];
    }
  });
  return nnodes;
}

/* The edges a -> j (cutoff) of owned atoms a in [begin, end), appended in neighbour-list order:
   a, the LAMMPS atom j and x_j - x_a. Returns the first pair closer than MIN_DISTANCE, else
   {-1, -1} (the caller stops the run on one thread: error->one must not run in a worker). */
std::pair<int, int> PairFFPT::owned_edges(int begin, int end, std::vector<int64_t> &ei,
                                          std::vector<int> &ej, std::vector<double> &ev)
{
  double **x = atom->x;
  const double rcsq = cutoff * cutoff;
  std::pair<int, int> bad{-1, -1};
  for (int a = begin; a < end; a++) {
    const int *jlist = list->firstneigh[a];
    for (int jj = 0; jj < list->numneigh[a]; jj++) {
      const int j = jlist[jj] & NEIGHMASK;
      const double dx = x[j][0] - x[a][0], dy = x[j][1] - x[a][1], dz = x[j][2] - x[a][2];
      const double rsq = dx * dx + dy * dy + dz * dz;
      if (rsq >= rcsq) continue;
      if (rsq < MIN_DISTANCE * MIN_DISTANCE && bad.first < 0) bad = {a, j};
      ei.push_back(a);
      ej.push_back(j);
      ev.push_back(dx);
      ev.push_back(dy);
      ev.push_back(dz);
    }
  }
  return bad;
}

/* Nodes 0..nlocal-1 are the owned atoms, then ghosts in breadth-first order: one node per
   atom ID with fold (see the top of this file), else one per LAMMPS atom. Nodes fewer than
   max_hops hops from the owned atoms get their edges q -> j (node), with the LAMMPS atom of j
   (edge_atom) and the edge vector x_j - x_(atom of q) (edge_vec). Returns the node count. */
int PairFFPT::breadth_first_graph(int max_hops)
{
  double **x = atom->x;
  const tagint *tag = atom->tag;
  const int nlocal = atom->nlocal;
  const int nall = nlocal + atom->nghost;
  const int *numneigh = list->numneigh;
  int **firstneigh = list->firstneigh;
  const double rcsq = cutoff * cutoff;

  if (fold) {
    tagint maxtag = 0;
    for (int i = 0; i < nall; i++) maxtag = std::max(maxtag, tag[i]);
    if ((tagint) tag2node.size() < maxtag + 1) tag2node.resize(maxtag + 1, -1);
  }
  atom2node.assign(fold ? 0 : nall, -1);
  node_atom.resize(nlocal);
  node_hop.assign(nlocal, 0);
  for (int i = 0; i < nlocal; i++) {
    node_atom[i] = i;
    if (fold) tag2node[tag[i]] = i;
    else atom2node[i] = i;
  }
  // the owned atoms' edges (most of the work): on torch's threads in chunks of owned atoms, each
  // into its own buffers, then joined in order; their ghost neighbours are numbered after that
  edge_i.clear();
  edge_j.clear();
  edge_atom.clear();
  edge_vec.clear();
  const int nthreads = at::get_num_threads();
  const int nchunks = nthreads > 1 ? std::max(1, std::min(nlocal / 64, 8 * nthreads)) : 1;
  std::pair<int, int> bad{-1, -1};
  if (nchunks == 1) {
    bad = owned_edges(0, nlocal, edge_i, edge_atom, edge_vec);
  } else {
    edge_chunks.resize(nchunks);
    at::parallel_for(0, nchunks, 1, [&](int64_t b, int64_t e) {
      for (int64_t c = b; c < e; c++) {
        EdgeChunk &ch = edge_chunks[c];
        ch.i.clear();
        ch.atom.clear();
        ch.vec.clear();
        ch.bad = owned_edges((int) (c * nlocal / nchunks), (int) ((c + 1) * nlocal / nchunks),
                             ch.i, ch.atom, ch.vec);
      }
    });
    for (int c = nchunks - 1; c >= 0; c--)
      if (edge_chunks[c].bad.first >= 0) bad = edge_chunks[c].bad;
    std::vector<size_t> at(nchunks + 1, 0);
    for (int c = 0; c < nchunks; c++) at[c + 1] = at[c] + edge_chunks[c].i.size();
    edge_i.resize(at[nchunks]);
    edge_atom.resize(at[nchunks]);
    edge_vec.resize(3 * at[nchunks]);
    at::parallel_for(0, nchunks, 1, [&](int64_t b, int64_t e) {
      for (int64_t c = b; c < e; c++) {
        const EdgeChunk &ch = edge_chunks[c];
        std::copy(ch.i.begin(), ch.i.end(), edge_i.begin() + at[c]);
        std::copy(ch.atom.begin(), ch.atom.end(), edge_atom.begin() + at[c]);
        std::copy(ch.vec.begin(), ch.vec.end(), edge_vec.begin() + 3 * at[c]);
      }
    });
  }
  if (bad.first >= 0) {
    const double *xa = x[bad.first], *xb = x[bad.second];
    too_close(bad.first, bad.second,
              (xb[0] - xa[0]) * (xb[0] - xa[0]) + (xb[1] - xa[1]) * (xb[1] - xa[1]) +
                  (xb[2] - xa[2]) * (xb[2] - xa[2]));
  }
  const size_t nown = edge_i.size();
  edge_j.resize(nown);
  for (size_t k = 0; k < nown; k++) {
    const int j = edge_atom[k];
    int &slot = fold ? tag2node[tag[j]] : atom2node[j];
    if (slot < 0) {
      slot = (int) node_atom.size();
      node_atom.push_back(j);
      node_hop.push_back(1);
    }
    edge_j[k] = slot;
  }
  for (size_t q = nlocal; q < node_atom.size(); q++) {
    if (node_hop[q] >= max_hops) continue;    // enters only as a neighbour
    const int a = node_atom[q];
    const int *jlist = firstneigh[a];
    for (int jj = 0; jj < numneigh[a]; jj++) {
      const int j = jlist[jj] & NEIGHMASK;
      const double dx = x[j][0] - x[a][0], dy = x[j][1] - x[a][1], dz = x[j][2] - x[a][2];
      const double rsq = dx * dx + dy * dy + dz * dz;
      if (rsq >= rcsq) continue;
      if (rsq < MIN_DISTANCE * MIN_DISTANCE) too_close(a, j, rsq);
      int &slot = fold ? tag2node[tag[j]] : atom2node[j];
      if (slot < 0) {
        slot = (int) node_atom.size();
        node_atom.push_back(j);
        node_hop.push_back(node_hop[q] + 1);
      }
      edge_i.push_back((int64_t) q);
      edge_j.push_back(slot);
      edge_atom.push_back(j);
      edge_vec.push_back(dx);
      edge_vec.push_back(dy);
      edge_vec.push_back(dz);
    }
  }
  const int nnodes = (int) node_atom.size();
  node_pos.resize(3 * (size_t) nnodes);
  species.resize(nnodes);
  for (int k = 0; k < nnodes; k++) {
    if (fold) tag2node[tag[node_atom[k]]] = -1;    // reset for the next step
    set_node(k, node_atom[k]);
  }
  return nnodes;
}

/* Node k of the graph is LAMMPS atom a: its position and model species. */
void PairFFPT::set_node(int k, int a)
{
  double **x = atom->x;
  node_pos[3 * k] = x[a][0];
  node_pos[3 * k + 1] = x[a][1];
  node_pos[3 * k + 2] = x[a][2];
  const int s = type2species[atom->type[a]];
  if (s < 0)
    error->one(FLERR, "pair_style ffpt: atom {} has type {} which pair_coeff maps to NULL",
               atom->tag[a], atom->type[a]);
  species[k] = s;
}

/* Every owned and ghost atom is a node; edges from the full neighbour lists of all of them. */
int PairFFPT::build_unfolded_graph()
{
  double **x = atom->x;
  const int nall = atom->nlocal + atom->nghost;
  const int ntot = list->inum + list->gnum;
  const int *ilist = list->ilist;
  const int *numneigh = list->numneigh;
  int **firstneigh = list->firstneigh;
  const double rcsq = cutoff * cutoff;

  edge_i.clear();
  edge_j.clear();
  for (int ii = 0; ii < ntot; ii++) {
    const int i = ilist[ii];
    const int *jlist = firstneigh[i];
    for (int jj = 0; jj < numneigh[i]; jj++) {
      const int j = jlist[jj] & NEIGHMASK;
      const double dx = x[j][0] - x[i][0], dy = x[j][1] - x[i][1], dz = x[j][2] - x[i][2];
      const double rsq = dx * dx + dy * dy + dz * dz;
      if (rsq < MIN_DISTANCE * MIN_DISTANCE) too_close(i, j, rsq);
      if (rsq < rcsq) {
        edge_i.push_back(i);
        edge_j.push_back(j);
      }
    }
  }
  edge_shift.assign(3 * edge_i.size(), 0.0);
  node_atom.resize(nall);
  node_pos.resize(3 * (size_t) nall);
  species.resize(nall);
  for (int k = 0; k < nall; k++) {
    node_atom[k] = k;
    set_node(k, k);
  }
  return nall;
}

double PairFFPT::process_cpu_seconds()
{
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double) ts.tv_sec + 1e-9 * (double) ts.tv_nsec;
}

/* Entry point for the torch-free loader ffptplugin.so (see ffpt_plugin.cpp). */
extern "C" __attribute__((visibility("default"))) void *ffpt_create_pair(void *lmp)
{
  return (void *) new PairFFPT((LAMMPS *) lmp);
}
