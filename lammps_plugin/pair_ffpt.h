/* pair_style ffpt: ffpt machine-learned potentials (TorchScript artifacts from ffpt-deploy).
 *
 *   pair_style ffpt [exchange auto|shell|layer] [fold yes|no] [timing yes|no]
 *                   [check_masses yes|no] [trust yes|no]
 *   pair_coeff * * model.pt O H        (one element symbol or NULL per LAMMPS atom type)
 *
 * exchange: layer = per-layer ghost feature exchange (pair_ffpt_layers.cpp), shell = ghost shell
 * over the receptive field; auto = layer with > 1 rank if the artifact has per-layer pieces.
 * timing yes: per-part ms/step, CPU time, graph size and peak memory per rank after each run.
 * Everything else (elements, masses, cutoff, interaction layers, dtype) is read from the
 * artifact, after its content hash is verified; a compiled .pt2 is loaded only if its SHA-256
 * is on the allow-list ffpt-deploy writes (or with trust yes). See docs/safety.md.
 */
#ifndef LMP_PAIR_FFPT_H
#define LMP_PAIR_FFPT_H

#include "ffpt_lammps_compat.h"    // FFPT_OVERRIDE_SINCE_2022 (LAMMPS API differences)
#include "pair.h"

#include <torch/script.h>

#include <chrono>
#include <map>
#include <memory>

#include <cstdint>
#include <string>
#include <vector>

namespace torch::inductor {
class AOTIModelPackageLoader;
}

namespace LAMMPS_NS {

class PairFFPT : public Pair {
 public:
  PairFFPT(class LAMMPS *);
  ~PairFFPT() override;
  void compute(int, int) override;
  void settings(int, char **) override;
  void coeff(int, char **) override;
  void init_style() override;
  double init_one(int, int) override;
  double memory_usage() override;
  void finish() FFPT_OVERRIDE_SINCE_2022;
  int pack_forward_comm(int, int *, double *, int, int *) override;
  void unpack_forward_comm(int, int, double *) override;
  int pack_reverse_comm(int, int, double *) override;
  void unpack_reverse_comm(int, int *, double *) override;

 protected:
  bool fold;          // fold periodic images / duplicate ghosts onto one node per atom ID
  bool use_ghosts;    // wide ghost shell + neighbour lists of ghosts (needed with > 1 rank)
  bool model_loaded;
  bool check_masses;  // type masses must match the elements' standard masses (0.5 u)
  bool trust;         // load a compiled .pt2 even if it is not on the allow-list
  static constexpr double MIN_DISTANCE = 0.1;    // Angstrom; closer atoms: broken coordinates
  static constexpr double MAX_FORCE = 1.0e4;     // eV/A; larger: broken structure or model
  enum Exchange { AUTO, SHELL, LAYER };
  Exchange exchange_request;    // from pair_style (auto: layer with > 1 rank if the model can)
  bool layers;                  // this run exchanges node features after every layer
  bool cross_pairs;             // ... and computes each cross-rank edge pair on one rank
  bool cross_pairs_request;     // pair_style ffpt cross_pairs yes
  bool timing;                  // time the parts of a step, print them at the end of a run
  int node_channels;            // doubles per atom exchanged between layers (0: no pieces)
  int layer_hops;               // edges one interaction reaches (2 with displacements)
  std::string aoti_dir;               // private folder with the verified .pt2 records
  std::vector<double> model_masses;   // standard masses of the model's elements (u)
  torch::jit::Module model;                                     // TorchScript artifact
  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> aoti;    // AOTInductor (.pt2)
  torch::Device device;
  torch::ScalarType dtype;
  std::string model_path;
  std::vector<std::string> elements;
  double cutoff;
  int num_interactions;
  std::vector<int> type2species;    // LAMMPS type -> model species index, -1 = NULL

  // work buffers reused every step (grown, never shrunk)
  std::vector<int64_t> edge_i, edge_j, species;
  struct EdgeChunk {    // one thread's share of the owned atoms' edges (breadth_first_graph)
    std::vector<int64_t> i;
    std::vector<int> atom;
    std::vector<double> vec;
    std::pair<int, int> bad{-1, -1};
  };
  std::vector<EdgeChunk> edge_chunks;
  std::vector<double> edge_shift, node_pos;
  std::vector<int> tag2node, node_atom, node_hop;
  // per-layer exchange: LAMMPS atom of each edge's neighbour, edge vectors, per-atom comm rows
  std::vector<int> edge_atom, atom2node;    // atom2node: node of each ghost atom (fold no)
  std::vector<double> edge_vec, comm_rows, atom_force;

  // timers (seconds summed over the steps of a run), see finish()
  enum Timer { T_GRAPH, T_TO_MODEL, T_FORWARD, T_BACKWARD, T_EXCHANGE, T_FROM_MODEL, T_COUNT };
  double timers[T_COUNT];
  long timed_steps;
  double cpu_seconds;    // process CPU time inside compute() (a load-independent measure)
  double cpu_start;
  double cpu_exchange;   // of which in the ghost exchange (MPI waits spin: counts the waits)
  double graph_nodes, graph_edges;    // summed over the timed steps (graph size per rank)
  std::chrono::steady_clock::time_point tick;
  void lap(int which);

  int build_folded_graph();
  int build_layer_graph();
  int breadth_first_graph(int max_hops);
  void check_force(const double *fa, int a);
  void tally_energy(const torch::Tensor &atomic);
  void tally_virial(const torch::Tensor &w3);
  void start_step(int eflag, int vflag);
  std::vector<torch::Tensor> run_model(const torch::Tensor &pos, const torch::Tensor &spec,
                                       const torch::Tensor &eidx, const torch::Tensor &eshift,
                                       int nlocal);
  void compute_layers();
  torch::Tensor exchange_forward(const torch::Tensor &x, int nnodes);
  torch::Tensor exchange_reverse(const torch::Tensor &g, int nnodes, int nout);
  // the layer exchange moves only the rows of atoms that some rank's graph reads (brick comm):
  // per swap, which atoms of the send list and which received ghosts carry a row
  enum CommMode { COMM_ALL, COMM_FLAGS, COMM_MASKED };
  CommMode comm_mode = COMM_ALL;
  bool comm_masked = false;                           // this step's exchange uses the masks
  bool masks_ready = false;                           // set since the last list rebuild
  int comm_call = 0, comm_swaps = 0;                  // swap of the current pack/unpack; count
  std::vector<double> comm_need;                      // per atom: > 0 if its row is read
  std::vector<std::vector<char>> send_mask, recv_mask;    // by reverse-comm call order
  void setup_exchange_masks(int nnodes);
  const std::vector<char> &exchange_mask(std::vector<std::vector<char>> &masks, int c, int n);
  void add_forces_and_virial(const double *g, int nnodes);
  int build_unfolded_graph();
  void set_node(int k, int a);

  void allocate();
  void load_model(const std::string &path);
  void load_aoti(const std::string &path, const std::string &bytes,
                 const std::map<std::string, std::string> &records);
  void check_format(const std::string &path, std::map<std::string, std::string> &kv);
  void check_metadata(const std::string &path, std::map<std::string, std::string> &kv);
  void check_type_masses();
  void too_close(int a, int b, double rsq);
  void pair_cross_rank_edges();
  torch::Tensor to_model(const torch::Tensor &host) const;
  std::pair<int, int> owned_edges(int begin, int end, std::vector<int64_t> &ei,
                                  std::vector<int> &ej, std::vector<double> &ev);
  void check_forces(const double *fp, int nnodes);
  void setup_threads_and_device();
  static double process_cpu_seconds();

  // ensemble (pair_ffpt_ensemble.cpp): pair_coeff * * m1.pt m2.pt ... El...; model 1 drives the
  // dynamics, the others only enter the force deviation (model_devi: per atom, thermo, file)
 public:
  void *extract(const char *, int &) override;
  void *extract_peratom(const char *, int &) FFPT_OVERRIDE_SINCE_2022;

 protected:
  std::vector<torch::jit::Module> members;    // models 2..K
  std::vector<torch::ScalarType> member_dtypes;
  std::vector<std::string> member_paths;
  std::string devi_path;       // pair_style ... devi_file PATH (written by rank 0)
  int devi_every;              // members run on multiples of devi_every (+ thermo/fix pair)
  int devi_flag;               // set by fix pair ... model_devi 1 (extract "model_devi_flag")
  FILE *devi_fp;
  std::vector<double> devi_atom, devi_rows, devi_global;    // per atom, comm rows, pvector
  bool ensemble_keyword(const std::string &key, int narg, char **arg, int &iarg);
  int load_models(int narg, char **arg);
  void init_ensemble();
  void compute_deviation(const std::vector<torch::Tensor> &inputs, const torch::Tensor &forces,
                         const torch::Tensor &atomic, int nnodes);
  void close_devi_file();
};

}    // namespace LAMMPS_NS

#endif
