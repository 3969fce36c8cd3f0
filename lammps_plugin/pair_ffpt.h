/* pair_style ffpt: ffpt machine-learned potentials (TorchScript artifacts from ffpt-deploy).
 *
 *   pair_style ffpt [fold yes|no] [check_masses yes|no] [trust yes|no]
 *   pair_coeff * * model.pt O H        (one element symbol or NULL per LAMMPS atom type)
 *
 * Everything else (elements, masses, cutoff, interaction layers, dtype) is read from the
 * artifact, after its content hash is verified; a compiled .pt2 is loaded only if its SHA-256
 * is on the allow-list ffpt-deploy writes (or with trust yes). See docs/safety.md.
 */
#ifndef LMP_PAIR_FFPT_H
#define LMP_PAIR_FFPT_H

#include "pair.h"

#include <torch/script.h>

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

 protected:
  bool fold;          // fold periodic images / duplicate ghosts onto one node per atom ID
  bool use_ghosts;    // wide ghost shell + neighbour lists of ghosts (needed with > 1 rank)
  bool model_loaded;
  bool check_masses;  // type masses must match the elements' standard masses (0.5 u)
  bool trust;         // load a compiled .pt2 even if it is not on the allow-list
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
  std::vector<double> edge_shift, node_pos;
  std::vector<int> tag2node, node_atom, node_hop;

  int build_folded_graph();
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
  void check_forces(const double *fp, int nnodes);
  void setup_threads_and_device();
};

}    // namespace LAMMPS_NS

#endif
