/* pair_style ffpt/kk: see pair_ffpt_kokkos.h. The graph is built by two passes over the Kokkos
 * full neighbour list (count edges within the cutoff, exclusive scan, fill), node positions and
 * species by one more; the device buffers go to libtorch with torch::from_blob on the matching
 * device. The model call, energy and virial tally and every error message are PairFFPT's; only
 * the rare failure paths (atoms too close, a NULL-mapped atom, an absurd force) copy to the host
 * to report through PairFFPT's checks.
 */
#include "pair_ffpt_kokkos.h"
#include "ffpt_lammps_compat.h"

#include "atom_kokkos.h"
#include "atom_masks.h"
#include "error.h"
#include "kokkos.h"
#include "neigh_list_kokkos.h"
#include "neigh_request.h"
#include "neighbor.h"

#include <string>
#include <type_traits>

using namespace LAMMPS_NS;

namespace {
/* libtorch device of a Kokkos execution space's memory: CUDA for Kokkos::Cuda, else the CPU. */
template <class DeviceType> torch::Device torch_device_of()
{
#ifdef KOKKOS_ENABLE_CUDA
  if (std::is_same<typename DeviceType::execution_space, Kokkos::Cuda>::value)
    return torch::Device(torch::kCUDA, (c10::DeviceIndex) Kokkos::Cuda().cuda_device());
#endif
  return torch::Device(torch::kCPU);
}

/* Grow a 1-d view to at least n entries (25 % headroom); contents are not kept. */
template <class View> void grow(View &v, size_t n, const char *name)
{
  if (v.extent(0) < n)
    v = View(Kokkos::view_alloc(Kokkos::WithoutInitializing, std::string(name)), n + n / 4 + 16);
}
}    // namespace

template <class DeviceType> PairFFPTKokkos<DeviceType>::PairFFPTKokkos(LAMMPS *lmp) : PairFFPT(lmp)
{
  kokkosable = 1;
  atomKK = (AtomKokkos *) atom;
  execution_space = ExecutionSpaceFromDevice<DeviceType>::space;
  datamask_read = X_MASK | F_MASK | TAG_MASK | TYPE_MASK;
  datamask_modify = F_MASK;
  d_close = Kokkos::View<double[3], DeviceType>("ffpt:close");
  d_close_flag = Kokkos::View<int, DeviceType>("ffpt:close_flag");
}

template <class DeviceType> void PairFFPTKokkos<DeviceType>::init_style()
{
  if (exchange_request == LAYER)
    error->all(FLERR, "pair_style ffpt/kk: 'exchange layer' (per-layer ghost features) is not "
               "available in the KOKKOS style; use 'exchange shell' or pair_style ffpt");
  if (!members.empty())
    error->all(FLERR, "pair_style ffpt/kk: model ensembles (several artifacts in pair_coeff) run "
               "with pair_style ffpt only; drop '-sf kk' or give one model");
  exchange_request = SHELL;
  PairFFPT::init_style();

  // the full list PairFFPT requested, built by KOKKOS on this style's device
  const bool host = std::is_same<DeviceType, LMPHostType>::value &&
      !std::is_same<DeviceType, LMPDeviceType>::value;
  const bool dev = std::is_same<DeviceType, LMPDeviceType>::value;
#ifdef FFPT_OLD_LAMMPS_API
  NeighRequest *req = neighbor->requests[neighbor->nrequest - 1];
  req->kokkos_host = host ? 1 : 0;
  req->kokkos_device = dev ? 1 : 0;
#else
  NeighRequest *req = neighbor->find_request(this);
  req->set_kokkos_host(host ? 1 : 0);
  req->set_kokkos_device(dev ? 1 : 0);
  req->enable_full();
#endif

  const int ntypes = atom->ntypes;
  d_type2species = Kokkos::View<int *, DeviceType>("ffpt:type2species", ntypes + 1);
  auto h = Kokkos::create_mirror_view(d_type2species);
  for (int t = 0; t <= ntypes; t++) h(t) = type2species[t];
  Kokkos::deep_copy(d_type2species, h);
}

template <class DeviceType> void PairFFPTKokkos<DeviceType>::compute(int eflag, int vflag)
{
  start_step(eflag, vflag);    // host eatom (allocated, zeroed) receives per-atom energies
  atomKK->sync(execution_space, datamask_read);
  atomKK->modified(execution_space, datamask_modify);

  int nnodes = 0;
  const int64_t nedges = build_graph_device(nnodes);
  graph_nodes += nnodes;
  graph_edges += (double) nedges;
  lap(T_GRAPH);
  if (nnodes == 0) {
    cpu_seconds += process_cpu_seconds() - cpu_start;
    return;
  }

  const torch::Device kdev = torch_device_of<DeviceType>();
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64).device(kdev);
  const auto i64 = torch::TensorOptions().dtype(torch::kInt64).device(kdev);
  torch::Tensor pos = torch::from_blob(d_pos.data(), {nnodes, 3}, f64).to(device, dtype, false, true);
  torch::Tensor spec = torch::from_blob(d_species.data(), {nnodes}, i64).to(device);
  torch::Tensor eidx = torch::from_blob(d_edges.data(), {2, nedges}, i64).to(device);
  torch::Tensor eshift =
      torch::from_blob(d_shift.data(), {nedges, 3}, f64).to(device, dtype, false, true);
  lap(T_TO_MODEL);

  std::vector<torch::Tensor> res = run_model(pos, spec, eidx, eshift, atom->nlocal);
  lap(T_FORWARD);
  tally_energy(res[1]);

  // forces of node k -> atom k (ghost forces go back to their owners by LAMMPS, newton on)
  torch::Tensor forces = res[2].detach().to(kdev, torch::kFloat64).contiguous();
  const double f2max = forces.square().sum(1).max().item<double>();    // waits for the model
  if (!(f2max <= MAX_FORCE * MAX_FORCE)) check_forces_on_host(forces, nnodes);
  Kokkos::View<const double **, Kokkos::LayoutRight, DeviceType,
               Kokkos::MemoryTraits<Kokkos::Unmanaged>>
      fm(forces.data_ptr<double>(), nnodes, 3);
  auto f = atomKK->k_f.template view<DeviceType>();
  Kokkos::parallel_for(
      "ffpt:forces", Kokkos::RangePolicy<DeviceType>(0, nnodes), KOKKOS_LAMBDA(const int k) {
        f(k, 0) += fm(k, 0);
        f(k, 1) += fm(k, 1);
        f(k, 2) += fm(k, 2);
      });
  Kokkos::fence();
  if (vflag_global) tally_virial(res[3]);
  lap(T_FROM_MODEL);
  cpu_seconds += process_cpu_seconds() - cpu_start;
}

/* The model graph on the device; returns the edge count, sets nnodes (see the header). */
template <class DeviceType> int64_t PairFFPTKokkos<DeviceType>::build_graph_device(int &nnodes)
{
  auto *klist = static_cast<NeighListKokkos<DeviceType> *>(list);
  auto d_ilist = klist->d_ilist;
  auto d_numneigh = klist->d_numneigh;
  auto d_neighbors = klist->d_neighbors;
  auto x = atomKK->k_x.template view<DeviceType>();
  auto tag = atomKK->k_tag.template view<DeviceType>();
  auto type = atomKK->k_type.template view<DeviceType>();
  const int nlocal = atom->nlocal;
  const int nall = nlocal + atom->nghost;
  const bool folded = fold && !use_ghosts;    // one rank: ghosts are images of owned atoms
  const int nentries = folded ? list->inum : list->inum + list->gnum;
  nnodes = folded ? nlocal : nall;
  const double rcsq = cutoff * cutoff, minsq = MIN_DISTANCE * MIN_DISTANCE;
  typedef Kokkos::RangePolicy<DeviceType> Range;

  if (folded) {    // owned atom of each atom ID
    tagint maxtag = 0;
    Kokkos::parallel_reduce(
        "ffpt:maxtag", Range(0, nall),
        KOKKOS_LAMBDA(const int i, tagint &m) { m = tag(i) > m ? tag(i) : m; },
        Kokkos::Max<tagint>(maxtag));
    grow(d_tag2atom, (size_t) maxtag + 1, "ffpt:tag2atom");
    auto t2a = d_tag2atom;
    Kokkos::parallel_for("ffpt:tag2atom", Range(0, nlocal), KOKKOS_LAMBDA(const int i) {
      t2a(tag(i)) = i;
    });
  }
  auto t2a = d_tag2atom;

  // pass 1: edges (< cutoff) per neighbour-list entry; remember one pair that is too close
  grow(d_count, (size_t) nentries, "ffpt:count");
  grow(d_offset, (size_t) nentries, "ffpt:offset");
  auto count = d_count;
  auto offset = d_offset;
  auto close = d_close;
  auto close_flag = d_close_flag;
  Kokkos::deep_copy(close_flag, 0);
  Kokkos::parallel_for("ffpt:count", Range(0, nentries), KOKKOS_LAMBDA(const int ii) {
    const int i = d_ilist(ii);
    int c = 0;
    for (int jj = 0; jj < d_numneigh(i); jj++) {
      const int j = d_neighbors(i, jj) & NEIGHMASK;
      const double dx = x(j, 0) - x(i, 0), dy = x(j, 1) - x(i, 1), dz = x(j, 2) - x(i, 2);
      const double rsq = dx * dx + dy * dy + dz * dz;
      if (rsq < minsq && Kokkos::atomic_compare_exchange(&close_flag(), 0, 1) == 0) {
        close(0) = i;
        close(1) = j;
        close(2) = rsq;
      }
      if (rsq < rcsq) c++;
    }
    count(ii) = c;
  });
  int64_t nedges = 0;
  Kokkos::parallel_scan(
      "ffpt:offsets", Range(0, nentries),
      KOKKOS_LAMBDA(const int ii, int64_t &sum, const bool final) {
        if (final) offset(ii) = sum;
        sum += count(ii);
      },
      nedges);
  int flag = 0;
  Kokkos::deep_copy(flag, close_flag);
  if (flag) {    // report through PairFFPT (atom IDs on the host)
    auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), close);
    atomKK->sync(Host, TAG_MASK);
    too_close((int) h(0), (int) h(1), h(2));
  }

  // pass 2: edges [i..., j...] and periodic shifts (folded: against the owned atom of j)
  grow(d_edges, 2 * (size_t) nedges, "ffpt:edges");
  grow(d_shift, 3 * (size_t) nedges, "ffpt:shift");
  auto edges = d_edges;
  auto shift = d_shift;
  Kokkos::parallel_for("ffpt:edges", Range(0, nentries), KOKKOS_LAMBDA(const int ii) {
    const int i = d_ilist(ii);
    int64_t e = offset(ii);
    for (int jj = 0; jj < d_numneigh(i); jj++) {
      const int j = d_neighbors(i, jj) & NEIGHMASK;
      const double dx = x(j, 0) - x(i, 0), dy = x(j, 1) - x(i, 1), dz = x(j, 2) - x(i, 2);
      if (dx * dx + dy * dy + dz * dz >= rcsq) continue;
      const int node = folded ? t2a(tag(j)) : j;
      edges(e) = i;
      edges(nedges + e) = node;
      for (int d = 0; d < 3; d++) shift(3 * e + d) = folded ? x(j, d) - x(node, d) : 0.0;
      e++;
    }
  });

  // nodes: positions and species (a NULL-mapped atom is reported through PairFFPT::set_node)
  grow(d_pos, 3 * (size_t) nnodes, "ffpt:pos");
  grow(d_species, (size_t) nnodes, "ffpt:species");
  auto pos = d_pos;
  auto spec = d_species;
  auto t2s = d_type2species;
  int minspec = 0;
  Kokkos::parallel_reduce(
      "ffpt:nodes", Range(0, nnodes),
      KOKKOS_LAMBDA(const int k, int &m) {
        for (int d = 0; d < 3; d++) pos(3 * k + d) = x(k, d);
        const int s = t2s(type(k));
        spec(k) = s;
        m = s < m ? s : m;
      },
      Kokkos::Min<int>(minspec));
  if (minspec < 0) {
    atomKK->sync(Host, X_MASK | TAG_MASK | TYPE_MASK);
    node_pos.resize(3 * (size_t) nnodes);
    species.resize(nnodes);
    for (int k = 0; k < nnodes; k++) set_node(k, k);
  }
  Kokkos::fence();
  return nedges;
}

/* An absurd or non-finite force: PairFFPT's check names the atom (host copy, then error). */
template <class DeviceType>
void PairFFPTKokkos<DeviceType>::check_forces_on_host(const torch::Tensor &forces, int nnodes)
{
  torch::Tensor fh = forces.to(torch::kCPU).contiguous();
  atomKK->sync(Host, TAG_MASK);
  node_atom.resize(nnodes);
  for (int k = 0; k < nnodes; k++) node_atom[k] = k;
  check_forces(fh.data_ptr<double>(), nnodes);
}

namespace LAMMPS_NS {
template class PairFFPTKokkos<LMPDeviceType>;
#ifdef LMP_KOKKOS_GPU
template class PairFFPTKokkos<LMPHostType>;
#endif
}    // namespace LAMMPS_NS
