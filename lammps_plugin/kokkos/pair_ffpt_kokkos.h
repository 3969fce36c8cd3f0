/* pair_style ffpt/kk (KOKKOS): pair_style ffpt with positions, neighbour list and forces in
 * Kokkos views on the execution space's device; the graph is built there and handed to libtorch
 * without a host copy (CUDA tensors for a CUDA build, CPU tensors for OpenMP/Serial).
 *
 *   pair_style ffpt [fold yes|no] [timing yes|no] [check_masses yes|no] [trust yes|no]
 *   pair_coeff * * model.pt O H          (run with -k on ... -sf kk, newton on)
 *
 * Everything but the graph and the force write-back is PairFFPT's (settings, pair_coeff, the
 * artifact checks, error messages, the model call, energy/virial tally, timing). Graph rules:
 * one rank with fold yes: the periodic graph of the owned atoms (ghosts folded onto the owned
 * atom of the same ID, as PairFFPT's breadth-first graph gives on one rank); otherwise (fold no,
 * or several ranks) every owned and ghost atom is a node over a ghost shell of the receptive
 * field (PairFFPT's unfolded graph). exchange layer (per-layer ghost features) is refused.
 * Built into LAMMPS by `ffpt patch-lammps` (docs/lammps.md).
 */
#ifdef PAIR_CLASS
// clang-format off
PairStyle(ffpt/kk,PairFFPTKokkos<LMPDeviceType>);
PairStyle(ffpt/kk/device,PairFFPTKokkos<LMPDeviceType>);
PairStyle(ffpt/kk/host,PairFFPTKokkos<LMPHostType>);
// clang-format on
#else

#ifndef LMP_PAIR_FFPT_KOKKOS_H
#define LMP_PAIR_FFPT_KOKKOS_H

#include "kokkos_type.h"
#include "pair_ffpt.h"

#include <cstdint>

namespace LAMMPS_NS {

template <class DeviceType> class PairFFPTKokkos : public PairFFPT {
 public:
  typedef DeviceType device_type;
  PairFFPTKokkos(class LAMMPS *);
  void compute(int, int) override;
  void init_style() override;

 protected:
  // the graph on the device (capacities grow, never shrink); node k is LAMMPS atom k
  Kokkos::View<int *, DeviceType> d_type2species;    // LAMMPS type -> species, -1 = NULL
  Kokkos::View<int *, DeviceType> d_tag2atom;        // atom ID -> owned atom (fold, one rank)
  Kokkos::View<int *, DeviceType> d_count;           // edges of each neighbour-list entry
  Kokkos::View<int64_t *, DeviceType> d_offset;      // first edge of each entry
  Kokkos::View<int64_t *, DeviceType> d_edges;       // [i of E edges, j of E edges]
  Kokkos::View<double *, DeviceType> d_shift;        // [E, 3] periodic shifts
  Kokkos::View<double *, DeviceType> d_pos;          // [nodes, 3]
  Kokkos::View<int64_t *, DeviceType> d_species;     // [nodes]
  Kokkos::View<double[3], DeviceType> d_close;       // a pair closer than MIN_DISTANCE: i, j, rsq
  Kokkos::View<int, DeviceType> d_close_flag;

  int64_t build_graph_device(int &nnodes);
  void check_forces_on_host(const torch::Tensor &forces, int nnodes);
};

}    // namespace LAMMPS_NS

#endif
#endif
